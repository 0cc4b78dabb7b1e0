package http

import (
	"fmt"
	"html"
	"html/template"
	"sort"
	"strings"
	"time"

	"github.com/custos/custos"
)

// Charts are inline SVG written here, server-side: no script, no CDN, and
// the console's Content-Security-Policy forbids scripts anyway. Every
// chart has a role="img" and an aria-label that says in words what it
// shows. Text in a chart is escaped here, since the result is trusted
// template.HTML.

const (
	chartW  = 960
	chartH  = 220
	padL    = 44
	padR    = 12
	padT    = 14
	padB    = 34
	plotW   = chartW - padL - padR
	plotH   = chartH - padT - padB
	maxLane = 12 // employees shown in the seller swimlane
)

// decisionColors colour reveals by overall decision; the legend names them.
var decisionOrder = []string{custos.OverallAllow, custos.OverallPartial, custos.OverallDeny, custos.OverallError}

var decisionColors = map[string]string{
	custos.OverallAllow:   "#1c7ed6",
	custos.OverallPartial: "#f59f00",
	custos.OverallDeny:    "#c92a2a",
	custos.OverallError:   "#868e96",
}

func svgOpen(b *strings.Builder, label string) {
	fmt.Fprintf(b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" preserveAspectRatio="xMinYMin meet">`,
		chartW, chartH, html.EscapeString(label))
}

func yAxis(b *strings.Builder, max int) {
	for _, f := range []float64{0, 0.5, 1} {
		y := padT + plotH - f*plotH
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>`, padL, chartW-padR, y, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" class="tick" text-anchor="end">%d</text>`, padL-6, y+4, int(f*float64(max)+0.5))
	}
}

func niceMax(m int) int {
	if m < 4 {
		return 4
	}
	return m + (4-m%4)%4
}

// timelineChart draws reveals per hour stacked by decision over hours
// hours from from, with the employee's alerts overlaid as bands from
// their first to their last evidence.
func timelineChart(entries []custos.AuditEntry, alerts []custos.Alert, from time.Time, hours int) (template.HTML, string) {
	counts := make([]map[string]int, hours)
	total := map[string]int{}
	maxN := 0
	for _, e := range entries {
		if e.Action != custos.ActionReveal {
			continue
		}
		h := int(e.Time.Sub(from) / time.Hour)
		if h < 0 || h >= hours {
			continue
		}
		if counts[h] == nil {
			counts[h] = map[string]int{}
		}
		d := e.Decision
		if decisionColors[d] == "" {
			d = custos.OverallError
		}
		counts[h][d]++
		total[d]++
	}
	for _, c := range counts {
		n := 0
		for _, v := range c {
			n += v
		}
		maxN = max(maxN, n)
	}
	maxN = niceMax(maxN)
	var parts []string
	for _, d := range decisionOrder {
		if total[d] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", total[d], d))
		}
	}
	summary := "no reveals"
	if len(parts) > 0 {
		summary = strings.Join(parts, ", ")
	}
	label := fmt.Sprintf("Reveals per hour from %s for %d hours: %s; %d alerts overlaid.", from.Format("2006-01-02 15:04Z"), hours, summary, len(alerts))
	var b strings.Builder
	svgOpen(&b, label)
	yAxis(&b, maxN)
	bw := float64(plotW) / float64(hours)
	x := func(t time.Time) float64 {
		return padL + float64(t.Sub(from))/float64(time.Hour)*bw
	}
	end := from.Add(time.Duration(hours) * time.Hour)
	for _, a := range alerts {
		if a.LastSeen.Before(from) || a.FirstSeen.After(end) {
			continue
		}
		x0, x1 := x(maxTime(a.FirstSeen, from)), x(minTime(a.LastSeen, end))
		if x1-x0 < 3 {
			x1 = x0 + 3
		}
		fmt.Fprintf(&b, `<rect class="alertband" x="%.1f" y="%d" width="%.1f" height="%d"><title>%s</title></rect>`,
			x0, padT, x1-x0, plotH, html.EscapeString("alert "+a.ID+" ("+a.Detector+", "+a.Severity+")"))
	}
	for h, c := range counts {
		y := float64(padT + plotH)
		for _, d := range decisionOrder {
			n := c[d]
			if n == 0 {
				continue
			}
			hgt := float64(n) / float64(maxN) * plotH
			y -= hgt
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`,
				padL+float64(h)*bw, y, max(bw-0.6, 0.8), hgt, decisionColors[d],
				html.EscapeString(fmt.Sprintf("%s: %d %s", from.Add(time.Duration(h)*time.Hour).Format("Jan 2 15:00"), n, d)))
		}
	}
	// A tick at each midnight inside the window, but not at its right
	// edge, where the label would be cut.
	for t := from.Truncate(24 * time.Hour).Add(24 * time.Hour); end.Sub(t) > 6*time.Hour; t = t.Add(24 * time.Hour) {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" class="grid"/><text x="%.1f" y="%d" class="tick">%s</text>`,
			x(t), x(t), padT, padT+plotH, x(t)+2, chartH-padB+16, t.Format("Jan 2"))
	}
	legend(&b)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), label
}

func legend(b *strings.Builder) {
	x := padL
	for _, d := range decisionOrder {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" class="tick">%s</text>`,
			x, chartH-12, decisionColors[d], x+14, chartH-3, d)
		x += 80
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" class="alertband"/><text x="%d" y="%d" class="tick">alert</text>`, x, chartH-12, x+14, chartH-3)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// median of xs; 0 for none.
func median(xs []int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]int(nil), xs...)
	sort.Ints(s)
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}

// peerChart draws the employee's daily reveals against the median of the
// rest of their team, day by day.
func peerChart(employee string, daily map[string][]int, from time.Time, days int) (template.HTML, string) {
	own := daily[employee]
	if own == nil {
		own = make([]int, days)
	}
	med := make([]float64, days)
	peers := 0
	for id := range daily {
		if id != employee {
			peers++
		}
	}
	maxN := 0
	ownTotal, medTotal := 0, 0.0
	for d := 0; d < days; d++ {
		var xs []int
		for id, c := range daily {
			if id != employee {
				xs = append(xs, c[d])
			}
		}
		med[d] = median(xs)
		maxN = max(maxN, own[d], int(med[d]+0.5))
		ownTotal += own[d]
		medTotal += med[d]
	}
	maxN = niceMax(maxN)
	label := fmt.Sprintf("Daily reveals over %d days from %s: this employee %d in total, team median %.0f (%d peers).",
		days, from.Format("2006-01-02"), ownTotal, medTotal, peers)
	var b strings.Builder
	svgOpen(&b, label)
	yAxis(&b, maxN)
	step := float64(plotW) / float64(max(days-1, 1))
	pt := func(d int, v float64) string {
		return fmt.Sprintf("%.1f,%.1f", padL+float64(d)*step, padT+plotH-v/float64(maxN)*plotH)
	}
	var ownPts, medPts []string
	for d := 0; d < days; d++ {
		ownPts = append(ownPts, pt(d, float64(own[d])))
		medPts = append(medPts, pt(d, med[d]))
	}
	fmt.Fprintf(&b, `<polyline class="median" points="%s"/>`, strings.Join(medPts, " "))
	fmt.Fprintf(&b, `<polyline class="own" points="%s"/>`, strings.Join(ownPts, " "))
	for d := 0; d < days; d += 7 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick">%s</text>`, padL+float64(d)*step, chartH-padB+16, from.Add(time.Duration(d)*24*time.Hour).Format("Jan 2"))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" class="own"/><text x="%d" y="%d" class="tick">%s</text>`,
		padL, padL+20, chartH-7, chartH-7, padL+26, chartH-3, html.EscapeString(employee))
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" class="median"/><text x="%d" y="%d" class="tick">team median</text>`,
		padL+200, padL+220, chartH-7, chartH-7, padL+226, chartH-3)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), label
}

// swimlaneChart draws, per employee (most reveals first), a dot per day
// sized by how many of the seller's negative reviewers they revealed.
func swimlaneChart(entries []custos.AuditEntry, rows []revealer, from time.Time, days int) (template.HTML, string) {
	if len(rows) > maxLane {
		rows = rows[:maxLane]
	}
	lane := map[string]int{}
	for i, r := range rows {
		lane[r.Employee] = i
	}
	counts := map[[2]int]int{}
	maxN := 1
	for _, e := range entries {
		i, ok := lane[e.Actor.ID]
		d := int(e.Time.Sub(from) / (24 * time.Hour))
		if !ok || d < 0 || d >= days {
			continue
		}
		k := [2]int{i, d}
		counts[k]++
		maxN = max(maxN, counts[k])
	}
	label := fmt.Sprintf("Reveals of this seller's negative reviewers per employee per day over %d days from %s: %d employees, %d reveals.",
		days, from.Format("2006-01-02"), len(rows), len(entries))
	h := padT + 22*max(len(rows), 1) + padB
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, h, html.EscapeString(label))
	const left = 150
	step := float64(chartW-left-padR) / float64(days)
	for i, r := range rows {
		y := padT + 22*i + 11
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="tick" text-anchor="end">%s</text><line x1="%d" x2="%d" y1="%d" y2="%d" class="grid"/>`,
			left-8, y+4, html.EscapeString(shorten(r.Employee, 20)), left, chartW-padR, y, y)
	}
	keys := make([][2]int, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		n := counts[k]
		rad := 2.5 + 7*float64(n)/float64(maxN)
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%d" r="%.1f" class="dot"><title>%s</title></circle>`,
			left+(float64(k[1])+0.5)*step, padT+22*k[0]+11, rad,
			html.EscapeString(fmt.Sprintf("%s, %s: %d", rows[k[0]].Employee, from.Add(time.Duration(k[1])*24*time.Hour).Format("Jan 2"), n)))
	}
	for d := 0; d < days; d += 7 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick">%s</text>`, left+float64(d)*step, h-padB+16, from.Add(time.Duration(d)*24*time.Hour).Format("Jan 2"))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), label
}
