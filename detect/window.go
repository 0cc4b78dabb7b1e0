package detect

import (
	"math"
	"math/bits"
	"slices"
)

// Sliding windows over stream time (unix nanoseconds). They expire lazily:
// callers call expire(now) before reading a count.

// countWindow counts events in the last span.
type countWindow struct {
	times []int64
	head  int
}

func (w *countWindow) add(t int64) { w.times = append(w.times, t) }

func (w *countWindow) expire(now, span int64) {
	for w.head < len(w.times) && w.times[w.head] <= now-span {
		w.head++
	}
	if w.head > 64 && w.head*2 > len(w.times) {
		w.times = append(w.times[:0], w.times[w.head:]...)
		w.head = 0
	}
}

func (w *countWindow) count() int { return len(w.times) - w.head }

// distinctWindow counts distinct keys seen in the last span.
type distinctWindow struct {
	last map[string]int64 // key → time it was last added
	fifo []keyTime
	head int
}

type keyTime struct {
	key string
	t   int64
}

func (w *distinctWindow) add(key string, t int64) {
	if w.last == nil {
		w.last = make(map[string]int64)
	}
	w.last[key] = t
	w.fifo = append(w.fifo, keyTime{key, t})
}

func (w *distinctWindow) expire(now, span int64) {
	for w.head < len(w.fifo) && w.fifo[w.head].t <= now-span {
		kt := w.fifo[w.head]
		if t, ok := w.last[kt.key]; ok && t == kt.t {
			delete(w.last, kt.key)
		}
		w.fifo[w.head] = keyTime{}
		w.head++
	}
	if w.head > 64 && w.head*2 > len(w.fifo) {
		w.fifo = append(w.fifo[:0], w.fifo[w.head:]...)
		w.head = 0
	}
}

func (w *distinctWindow) count() int { return len(w.last) }

// evRing keeps the most recent audit indices of one kind of event, with
// their times, for evidence.
type evRing struct {
	buf [evRingSize]evRef
	n   int // total ever pushed
}

const evRingSize = 16

type evRef struct {
	idx uint64
	t   int64
}

func (r *evRing) push(idx uint64, t int64) {
	r.buf[r.n%evRingSize] = evRef{idx, t}
	r.n++
}

// since appends to dst the indices pushed at or after t.
func (r *evRing) since(dst []uint64, t int64) []uint64 {
	start := max(0, r.n-evRingSize)
	for i := start; i < r.n; i++ {
		if e := r.buf[i%evRingSize]; e.t >= t {
			dst = append(dst, e.idx)
		}
	}
	return dst
}

// dayRing counts events per day over the last len(counts) days.
type dayRing struct {
	counts [14]int32
	days   [14]int64
}

func (d *dayRing) add(day int64, n int32) {
	i := int(day % int64(len(d.counts)))
	if d.days[i] != day {
		d.days[i], d.counts[i] = day, 0
	}
	d.counts[i] += n
}

// sum returns the count over days (today-span, today].
func (d *dayRing) sum(today int64, span int64) int {
	s := 0
	for i := range d.counts {
		if d.days[i] > today-span && d.days[i] <= today {
			s += int(d.counts[i])
		}
	}
	return s
}

// medianMAD returns the median and the median absolute deviation of xs,
// overwriting xs (with the deviations, sorted). It returns NaN for an
// empty slice.
func medianMAD(xs []float64) (med, mad float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	slices.Sort(xs)
	med = median(xs)
	for i, x := range xs {
		xs[i] = math.Abs(x - med)
	}
	slices.Sort(xs)
	return med, median(xs)
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// mergeEvidence merges sorted unique index lists, keeping at most max: the
// earliest half and the latest half, so both how it began and where it
// stands survive.
func mergeEvidence(a, b []uint64, max int) []uint64 {
	out := make([]uint64, 0, len(a)+len(b))
	out = append(out, a...)
	out = append(out, b...)
	slices.Sort(out)
	out = slices.Compact(out)
	if max > 0 && len(out) > max {
		keep := append(out[:max/2:max/2], out[len(out)-(max-max/2):]...)
		out = slices.Clone(keep)
	}
	return out
}

// Distinct-customer categories of the activity window.
const (
	kCustomers   = iota // every reveal
	kDenied             // nothing disclosed
	kMismatch           // a case purpose that did not fit
	kUnexplained        // no strong explanation
	kNegative           // the customer reviewed a seller negatively
	kOffHours           // outside shift or usual hours
	kOffUnexpl          // off-hours and unexplained
	kBreakGlass         // break-glass
	kBGOff              // break-glass off-hours
	kSelfCase           // under a case the employee opened for themselves
	nKinds
)

// resolvable are the kinds a later explained reveal of the customer clears.
const resolvable = 1<<kDenied | 1<<kMismatch | 1<<kUnexplained | 1<<kOffUnexpl

// Spans of the activity window.
const (
	w1h = iota
	w1d
)

// actWindow is an employee's reveal activity over the last hour and day:
// one time-ordered log of events, and per customer, per kind, how many of
// its events are in each window, so distinct counts move in O(1) per event.
// It replaces a window per feature, which cost a map and a cache miss each
// on every event.
//
// A customer's record is found from the customer's handle (custRef.acts
// lists the windows holding one, rarely more than one or two) rather than
// through a map per employee.
type actWindow struct {
	log      []actEvent
	h1, hd   int   // first event inside the 1h and 1d windows
	emp      int32 // the owner's empState.num
	custs    []custWin
	free     []int32
	distinct [2][nKinds]int32
	reveals  [2]int32 // events, not distinct
	plain    int32    // events with plaintext, 1d
	seq      int64    // seq of the next event
}

type actEvent struct {
	t       int64
	seq     int64
	slot    int32
	kinds   uint16
	plain   bool
	request bool
}

type custWin struct {
	ref      *custRef // the customer; nil when the record is free
	n        [2][nKinds]uint32
	resolved int64 // events with a smaller seq no longer count for resolvable kinds
	seenDay  int64 // calendar day of seenKind
	seenKind uint16
	live     bool
}

// slotOf returns the slot of customer's record, creating the record: the
// caller resolves and adds by slot, one search per event. A new record has
// no events in either window, so resolving it changes no count.
func (w *actWindow) slotOf(customer *custRef) int32 {
	for _, a := range customer.acts {
		if a.emp == w.emp {
			return a.slot
		}
	}
	var s int32
	if n := len(w.free); n > 0 {
		s = w.free[n-1]
		w.free = w.free[:n-1]
	} else {
		s = int32(len(w.custs))
		w.custs = append(w.custs, custWin{})
	}
	w.custs[s] = custWin{ref: customer, live: true}
	customer.acts = append(customer.acts, actSlot{emp: w.emp, slot: s})
	return s
}

// actSlot is where one employee's activity window keeps a customer.
type actSlot struct{ emp, slot int32 }

// dropAct forgets the record of employee emp's activity window.
func (r *custRef) dropAct(emp int32) {
	for i, a := range r.acts {
		if a.emp == emp {
			last := len(r.acts) - 1
			r.acts[i] = r.acts[last]
			r.acts = r.acts[:last]
			return
		}
	}
}

// addSlot records an event for the customer of slot s with the given kinds
// and returns the customer's record (valid until the next slotOf).
// request is false for an approval request, which is not counted as a
// reveal request.
func (w *actWindow) addSlot(s int32, t int64, kinds uint16, plain, request bool) *custWin {
	kinds &= 1<<nKinds - 1
	c := &w.custs[s]
	for b := kinds; b != 0; b &= b - 1 { // each kind set, lowest first
		k := bits.TrailingZeros16(b)
		for sp := w1h; sp <= w1d; sp++ {
			if c.n[sp][k] == 0 {
				w.distinct[sp][k]++
			}
			c.n[sp][k]++
		}
	}
	if request {
		w.reveals[w1h]++
		w.reveals[w1d]++
	}
	if plain {
		w.plain++
	}
	w.log = append(w.log, actEvent{t: t, seq: w.seq, slot: s, kinds: kinds, plain: plain, request: request})
	w.seq++
	return c
}

// resolveSlot clears the given kinds of the customer of slot s for every
// event so far.
func (w *actWindow) resolveSlot(s int32, kinds uint16) {
	c := &w.custs[s]
	for b := kinds & (1<<nKinds - 1); b != 0; b &= b - 1 {
		k := bits.TrailingZeros16(b)
		for sp := w1h; sp <= w1d; sp++ {
			if c.n[sp][k] > 0 {
				c.n[sp][k] = 0
				w.distinct[sp][k]--
			}
		}
	}
	c.resolved = w.seq
}

func (w *actWindow) leave(sp int, e actEvent) {
	c := &w.custs[e.slot]
	kinds := e.kinds
	if e.seq < c.resolved {
		kinds &^= resolvable // already cleared by resolve
	}
	for b := kinds; b != 0; b &= b - 1 {
		k := bits.TrailingZeros16(b)
		if c.n[sp][k] > 0 {
			c.n[sp][k]--
			if c.n[sp][k] == 0 {
				w.distinct[sp][k]--
			}
		}
	}
	if e.request {
		w.reveals[sp]--
	}
}

// expire moves both windows to now.
func (w *actWindow) expire(now int64) {
	for w.h1 < len(w.log) && w.log[w.h1].t <= now-hourNanos {
		w.leave(w1h, w.log[w.h1])
		w.h1++
	}
	for w.hd < len(w.log) && w.log[w.hd].t <= now-dayNanos {
		e := w.log[w.hd]
		w.leave(w1d, e)
		if e.plain {
			w.plain--
		}
		c := &w.custs[e.slot]
		// The customer's last event in the day window: free its record.
		if c.live && c.n[w1d][kCustomers] == 0 {
			c.ref.dropAct(w.emp)
			c.ref, c.live = nil, false
			w.free = append(w.free, e.slot)
		}
		w.hd++
	}
	if w.hd > 32 && w.hd*2 > len(w.log) { // keep the log near twice a day's events
		n := copy(w.log, w.log[w.hd:])
		w.log = w.log[:n]
		w.h1 -= w.hd
		w.hd = 0
	}
}
