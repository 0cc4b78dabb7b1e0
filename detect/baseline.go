package detect

import (
	"fmt"
	"math"
	"time"

	"github.com/custos/custos"
)

// Self-baseline and peer-group anomalies. Each employee's daily features
// (distinct customers asked for, of them unexplained, negative reviewers,
// denied) are compared, as the day goes on, with the employee's own past
// active days and with the same day-features of their peers (team, or role
// when the team is too small), using median and MAD, which a few extreme
// days do not drag along.

// peerGroup holds a peer group's member-day samples for the last PeerDays
// days and the statistics computed from them at the last day's close.
type peerGroup struct {
	name  string
	slots []peerSlot
	med   [nDaily]float64
	mad   [nDaily]float64
	n     int
}

type peerSlot struct {
	day  int64
	vals [][nDaily]float64
}

func (e *Engine) group(name string) *peerGroup {
	g := e.groups[name]
	if g == nil {
		g = &peerGroup{name: name, slots: make([]peerSlot, e.cfg.Baseline.PeerDays)}
		e.groups[name] = g
	}
	return g
}

func (g *peerGroup) add(day int64, v [nDaily]float64) {
	s := &g.slots[int(day%int64(len(g.slots)))]
	if s.day != day {
		s.day, s.vals = day, s.vals[:0]
	}
	s.vals = append(s.vals, v)
}

// recompute sets the statistics from the samples of days before today.
func (g *peerGroup) recompute(today int64) {
	g.n = 0
	inWindow := func(s *peerSlot) bool { return s.day < today && s.day >= today-int64(len(g.slots)) }
	size := 0
	for i := range g.slots {
		if inWindow(&g.slots[i]) {
			size += len(g.slots[i].vals)
		}
	}
	var cols [nDaily][]float64
	for f := range nDaily {
		cols[f] = make([]float64, 0, size)
	}
	for i := range g.slots {
		s := &g.slots[i]
		if !inWindow(s) {
			continue
		}
		for _, v := range s.vals {
			for f := range nDaily {
				cols[f] = append(cols[f], v[f])
			}
			g.n++
		}
	}
	for f := range nDaily {
		g.med[f], g.mad[f] = medianMAD(cols[f])
	}
}

// rollover closes the current day for every employee active in it and
// recomputes the peer statistics for the new day.
func (e *Engine) rollover(day int64) {
	for _, st := range e.active {
		e.closeDay(st)
	}
	e.gen++
	e.active = e.active[:0]
	for _, g := range e.groups {
		g.recompute(day)
	}
	e.day = day
}

func (e *Engine) closeDay(st *empState) {
	if st.day != e.day {
		return
	}
	keep := e.cfg.Baseline.HistoryDays
	for f := range nDaily {
		h := append(st.hist[f], dayValue{st.day, st.today[f]})
		if len(h) > keep {
			h = append(h[:0], h[len(h)-keep:]...)
		}
		st.hist[f] = h
		vals := e.scratch[:0] // medianMAD overwrites it; nothing keeps it
		for _, dv := range h {
			vals = append(vals, dv.v)
		}
		st.selfMed[f], st.selfMAD[f] = medianMAD(vals)
		e.scratch = vals
	}
	st.selfN = len(st.hist[0])
	if st.team != "" {
		e.group("team:"+st.team+"/"+st.role).add(st.day, st.today)
	}
	if st.role != "" {
		e.group("role:"+st.role).add(st.day, st.today)
	}
}

// peers returns the employee's peer group: those of their team with the
// same role when that sample is large enough, else everyone with their
// role, else nil.
func (e *Engine) peers(st *empState) *peerGroup {
	if st.peersDay != e.day {
		st.peers, st.peersDay = e.findPeers(st), e.day
	}
	return st.peers
}

func (e *Engine) findPeers(st *empState) *peerGroup {
	min := e.cfg.Baseline.MinPeers
	if g := e.groups["team:"+st.team+"/"+st.role]; st.team != "" && g != nil && g.n >= min {
		return g
	}
	if g := e.groups["role:"+st.role]; st.role != "" && g != nil && g.n >= min {
		return g
	}
	return nil
}

// threshold is the anomaly threshold of a (median, MAD) baseline.
func (e *Engine) threshold(med, mad, minDelta float64) float64 {
	cfg := e.cfg.Baseline
	return med + math.Max(minDelta, cfg.Z*1.4826*math.Max(mad, cfg.MADFloor))
}

var dailyText = [nDaily]string{
	dCustomers:   "distinct customers asked for",
	dUnexplained: "customers asked for that no case of theirs links",
	dNegative:    "customers asked for that no case of theirs links who left a negative review",
	dDenied:      "customers whose reveal was denied",
}

var dailyCat = [nDaily]int{dCustomers: catReveal, dUnexplained: catUnexplained, dNegative: catNegative, dDenied: catDenied}

func (e *Engine) detectBaseline(st *empState, ev *event) {
	cfg := e.cfg.Baseline
	g := e.peers(st)
	haveSelf := st.selfN >= cfg.MinDays
	if g == nil && !haveSelf {
		return
	}
	// Volume alone is no finding (a backlog makes busy days): only the
	// features about how reveals were explained, and only when they are
	// most of the day's work.
	for f := dUnexplained; f < nDaily; f++ {
		x := st.today[f]
		if x <= st.emitted[f] || x < cfg.MinShare*st.today[dCustomers] {
			continue
		}
		thr := math.Inf(-1)
		if haveSelf {
			thr = e.threshold(st.selfMed[f], st.selfMAD[f], cfg.MinDelta)
		}
		if g != nil {
			thr = math.Max(thr, e.threshold(g.med[f], g.mad[f], cfg.MinDelta))
		}
		if x < thr {
			continue
		}
		selfText, peerText := "no own history yet", "no peer group large enough"
		if haveSelf {
			selfText = fmt.Sprintf("their median %.0f (MAD %.1f) over %d active days", st.selfMed[f], st.selfMAD[f], st.selfN)
		}
		if g != nil {
			peerText = fmt.Sprintf("peer group %s median %.0f (MAD %.1f) over %d member-days", g.name, g.med[f], g.mad[f], g.n)
		}
		sev := custos.SeverityMedium
		if x >= 2*thr {
			sev = custos.SeverityHigh
		}
		dayStart := e.day * dayNanos
		e.raise(st, hit{
			detector: DetectorBaseline,
			subject:  dailyNames[f],
			severity: sev,
			score:    e.cfg.Weights[custos.SeverityRank(sev)] + x/100,
			explanation: fmt.Sprintf("%.0f %s on %s (UTC), above the threshold %.0f; %s; %s",
				x, dailyText[f], time.Unix(0, dayStart).UTC().Format("2006-01-02"), thr, selfText, peerText),
			evidence: st.ev[dailyCat[f]].since(nil, dayStart),
			first:    dayStart,
			refire:   true,
		})
		st.emitted[f] = x
	}
	_ = ev
}

// preLeaveMedian is the employee's median daily customers over active days
// before they gave notice; NaN when unknown.
func (e *Engine) preLeaveMedian(st *empState) float64 {
	if st.info == nil || st.info.LeavingSince.IsZero() {
		return math.NaN()
	}
	leaveDay := floorDiv(st.info.LeavingSince.UnixNano(), dayNanos)
	if leaveDay == st.leaveDay && !math.IsNaN(st.preLeave) {
		return st.preLeave
	}
	var vals []float64
	for _, dv := range st.hist[dCustomers] {
		if dv.day < leaveDay {
			vals = append(vals, dv.v)
		}
	}
	if len(vals) < e.cfg.Baseline.MinDays {
		return math.NaN()
	}
	st.preLeave, _ = medianMAD(vals)
	st.leaveDay = leaveDay
	return st.preLeave
}
