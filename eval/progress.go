package eval

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a bar of simulated time on a terminal; on anything else
// it writes nothing, so --json output stays clean.
type progress struct {
	w          io.Writer
	start, end time.Time
	last       time.Time
	began      time.Time
}

func newProgress(w io.Writer, start, end time.Time) *progress {
	f, ok := w.(*os.File)
	if !ok {
		return &progress{}
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return &progress{}
	}
	return &progress{w: w, start: start, end: end, began: time.Now()}
}

func (p *progress) update(at time.Time, events int) {
	if p.w == nil || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	frac := float64(at.Sub(p.start)) / float64(p.end.Sub(p.start))
	frac = min(max(frac, 0), 1)
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  day %d  %d events  %s ",
		strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100,
		int(at.Sub(p.start).Hours()/24)+1, events, time.Since(p.began).Round(time.Second))
}

func (p *progress) done(events int) {
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, "\r[%s] 100%%  %d events  %s\n", strings.Repeat("=", 30), events, time.Since(p.began).Round(time.Second))
}
