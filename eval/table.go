package eval

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints a result for people.
func WriteTable(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\tdetected\tcaught\ttime to detect\texposed before alert\tdetectors\n")
	for _, s := range r.Scenarios {
		ttd := "—"
		if s.TimeToDetectMinutes >= 0 {
			ttd = fmt.Sprintf("%.0f min", s.TimeToDetectMinutes)
		}
		det := "no"
		if s.Detected {
			det = "yes"
		}
		if !s.Malicious {
			det += " (control)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%d of %d\t%v\n", s.Name, det, len(s.Caught), len(s.Insiders), ttd,
			s.ExposedBeforeAlert, s.Exposed, s.Detectors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ninsiders caught: %d of %d\n", r.InsidersCaught, r.Insiders)
	fmt.Fprintf(w, "false alerts: %d (%.2f per 1,000 employee-days over %d employee-days)\n", r.FalseAlerts, r.FalseAlertsPer1000EmployeeDays, r.EmployeeDays)
	fmt.Fprintf(w, "median records exposed before the first alert: %.1f\n", r.MedianExposedBeforeAlert)
	if l := r.Leak; l.Mailed > 0 {
		fmt.Fprintf(w, "leaked aliases mailed: %d (%d refused by the relay); attributed to the right employee: %d (%.0f%%); wrong attributions: %d; first mail to alert: %.0f min\n",
			l.Mailed, l.Refused, l.Attributed, l.AttributionRate*100, l.Wrong, l.MinutesToAlert)
	}
	fmt.Fprintf(w, "%d events, %d audit entries in %.1f s (%.0f events/s), peak heap %.0f MB\n",
		r.Events, r.AuditEntries, r.Seconds, r.EventsPerSecond, r.PeakHeapMB)
	return nil
}
