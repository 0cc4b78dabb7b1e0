package honey

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/custos/custos"
	"github.com/custos/custos/internal/fakenames"
)

// The word lists are the simulator's (internal/fakenames), on purpose:
// honey customers planted into a simulated marketplace must have the PII
// lengths and shapes of its customers, or the length of the sealed record
// would tell them apart. A real deployment sets
// Config.EmailDomains to mailboxes it watches.

var firstNames = fakenames.FirstNames

var lastNames = fakenames.LastNames

// DefaultEmailDomains are reserved for documentation and testing (RFC 2606,
// RFC 6761): nothing sent to them reaches anyone. They match the simulator.
var DefaultEmailDomains = fakenames.EmailDomains

var streets = fakenames.Streets

var streetKinds = fakenames.StreetKinds

var towns = fakenames.Towns

// fakePII draws a plausible identity in region, from ranges set aside for
// fiction: NANP 555-01xx and Ofcom's 07700 900xxx.
func fakePII(r *rand.Rand, region string, domains []string) custos.PII {
	first := firstNames[r.IntN(len(firstNames))]
	last := lastNames[r.IntN(len(lastNames))]
	p := custos.PII{Name: first + " " + last}
	p.Email = fmt.Sprintf("%s.%s%d@%s", strings.ToLower(first), strings.ToLower(last), 1+r.IntN(999), domains[r.IntN(len(domains))])
	if region == "NA" || region == "LATAM" {
		p.Phone = fmt.Sprintf("+1-%03d-555-01%02d", 201+r.IntN(780), r.IntN(100))
	} else {
		p.Phone = fmt.Sprintf("+44 7700 900%03d", r.IntN(1000))
	}
	p.Address = fmt.Sprintf("%d %s %s, %s 00%03d", 1+r.IntN(250), streets[r.IntN(len(streets))],
		streetKinds[r.IntN(len(streetKinds))], towns[r.IntN(len(towns))], r.IntN(1000))
	return p
}
