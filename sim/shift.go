package sim

import (
	"math/rand/v2"
	"time"
)

// Shift arithmetic. A shift belongs to a local date D (0 = the date of
// Start); it starts startOff hours after D's midnight UTC and lasts hours.
// All instants are unix nanoseconds.

func (w *World) dayStart(d int) int64 { return w.start + int64(d)*nsDay }

// dateOf returns the UTC date index of t.
func (w *World) dateOf(t int64) int { return int(floorDiv(t-w.start, nsDay)) }

func (w *World) weekday(d int) time.Weekday {
	return time.Weekday(mod(int64(w.startWeekday+d), 7))
}

// hourOfWeek returns t's UTC hour of the week, Sunday 00:00 = 0.
func (w *World) hourOfWeek(t int64) int {
	return int(mod(int64(w.startWeekday)*24+floorDiv(t-w.start, nsHour), 168))
}

func (w *World) setAbsent(e int32, d int) {
	b := d - w.absentBase
	if b < 0 || b/64 >= len(w.emps[e].absent) {
		return
	}
	w.emps[e].absent[b/64] |= 1 << (b % 64)
}

func (w *World) isAbsent(e int32, d int) bool {
	b := d - w.absentBase
	if b < 0 || b/64 >= len(w.emps[e].absent) {
		return false
	}
	return w.emps[e].absent[b/64]&(1<<(b%64)) != 0
}

// nominal returns the shift window of e on local date d, worked or not.
func (w *World) nominal(e int32, d int) (int64, int64) {
	s := w.dayStart(d) + w.emps[e].startOff*nsHour
	return s, s + w.emps[e].hours*nsHour
}

// works reports whether e works on local date d.
func (w *World) works(e int32, d int) bool {
	return w.emps[e].workdays&(1<<w.weekday(d)) != 0 && !w.isAbsent(e, d)
}

// window returns e's shift on local date d, if e works that day.
func (w *World) window(e int32, d int) (int64, int64, bool) {
	if !w.works(e, d) {
		return 0, 0, false
	}
	s, t := w.nominal(e, d)
	return s, t, true
}

// shiftDate returns the local date whose nominal shift starts within UTC
// date d.
func (w *World) shiftDate(e int32, d int) int {
	return d - int(floorDiv(w.emps[e].startOff, 24))
}

// onShift reports whether e is at work at t.
func (w *World) onShift(e int32, t int64) bool {
	d := w.dateOf(t)
	for dd := d - 2; dd <= d+1; dd++ {
		if s, u, ok := w.window(e, dd); ok && t >= s && t < u {
			return true
		}
	}
	return false
}

// maxWalkDays bounds how far ahead a case's working time is walked; a case
// that would close later stays open.
const maxWalkDays = 21

// advance returns the instant at which e has worked dur of shift time after
// t0, or 0 if that is more than maxWalkDays away.
func (w *World) advance(e int32, t0, dur int64) int64 {
	d0 := w.dateOf(t0) - 2
	for d := d0; d < d0+maxWalkDays; d++ {
		s, u, ok := w.window(e, d)
		if !ok || u <= t0 {
			continue
		}
		s = max(s, t0)
		if dur < u-s {
			return s + dur
		}
		dur -= u - s
	}
	return 0
}

// mapOffsets turns sorted working-time offsets after t0 into instants in
// e's shifts, in place. Offsets past maxWalkDays become 0.
func (w *World) mapOffsets(e int32, t0 int64, offs []int64) {
	d0 := w.dateOf(t0) - 2
	var done int64 // working time before the current window
	k := 0
	for d := d0; d < d0+maxWalkDays && k < len(offs); d++ {
		s, u, ok := w.window(e, d)
		if !ok || u <= t0 {
			continue
		}
		s = max(s, t0)
		for k < len(offs) && offs[k]-done < u-s {
			offs[k] = s + offs[k] - done
			k++
		}
		done += u - s
	}
	for ; k < len(offs); k++ {
		offs[k] = 0
	}
}

// findAgent returns a support agent of region ri at work at t, or the first
// one to come on shift after t, and when.
func (w *World) findAgent(r *rand.Rand, ri int, t int64) (int32, int64) {
	try := func(region int, at int64) (int32, bool) {
		list := w.regionAgent[region][w.hourOfWeek(at)]
		if len(list) == 0 {
			return 0, false
		}
		for k := 0; k < 8; k++ {
			e := list[r.IntN(len(list))]
			if w.onShift(e, at) {
				return e, true
			}
		}
		return 0, false
	}
	if e, ok := try(ri, t); ok {
		return e, t
	}
	hour := floorDiv(t, nsHour) * nsHour
	for step := int64(1); step <= 96; step++ {
		at := hour + step*nsHour
		if e, ok := try(ri, at); ok {
			return e, at
		}
	}
	// A region without support staff: another region takes it.
	for other := range regions {
		if e, ok := try(other, t); ok {
			return e, t
		}
	}
	for step := int64(1); step <= 96; step++ {
		for other := range regions {
			if e, ok := try(other, hour+step*nsHour); ok {
				return e, hour + step*nsHour
			}
		}
	}
	return -1, t
}
