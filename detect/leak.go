package detect

import (
	"fmt"
	"strconv"

	"github.com/custos/custos"
)

// DetectorLeak names alerts raised by mail to a per-viewer alias from a
// sender that is not the marketplace: the alias left custos, and it was
// derived for exactly one employee.
const DetectorLeak = "leak"

// onRelayReject turns a relay.reject entry into a leak alert on the
// employee the alias was derived for. The evidence is the reject entry and
// the reveal that first disclosed the alias, so the bundle proves both who
// was shown it and that it came back from outside.
func (e *Engine) onRelayReject(index uint64, t int64, entry *custos.AuditEntry) {
	viewer := entry.Detail[custos.RelayViewer]
	if viewer == "" {
		return
	}
	st := e.state(viewer)
	st.leaks++
	evidence := []uint64{index}
	first := ""
	if v, err := strconv.ParseUint(entry.Detail[custos.RelayFirstIndex], 10, 64); err == nil {
		evidence = append(evidence, v)
		first = fmt.Sprintf(" at audit entry %d", v)
	}
	honey := ""
	if entry.Detail[custos.RelayHoney] == "true" {
		honey = "; the customer is a honeytoken, so this is a confirmed leak"
	}
	sender := entry.Detail[custos.RelaySenderDomain]
	if sender == "" {
		sender = "an unknown domain"
	}
	e.raise(st, hit{
		detector: DetectorLeak,
		severity: custos.SeverityCritical,
		explanation: fmt.Sprintf("mail from %s, not the marketplace, was sent to alias %s, which was derived for this employee "+
			"and shown to them for customer %s%s%s; %d leaked aliases of theirs so far",
			sender, entry.Resource.ID, entry.Detail[custos.RelayCustomer], first, honey, st.leaks),
		evidence: evidence,
		force:    true,
	})
}
