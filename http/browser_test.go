package http_test

import (
	"context"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/custos/custos"
	"github.com/custos/custos/internal/dbtest"
)

var screenshot = flag.String("screenshot", "", "write the alert page screenshot to this PNG file (e.g. ../docs/console.png)")

// chromiumPath finds a Chromium binary: $CHROMIUM, then the Debian
// package's, then the usual names on PATH.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// TestBrowserInvestigation drives the console in real headless Chromium:
// sign in through the form, open the top alert, check the explanation and
// that the evidence verified, open the employee page and check the charts
// rendered, suspend the employee with the button on the alert page, then
// check over the API that the employee's next reveal is refused.
func TestBrowserInvestigation(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		t.Skip("no chromium binary (install Debian's chromium package or set CHROMIUM); CI installs it")
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	ce := newConsoleEnv(t, dbtest.SQLite(t))
	token := ce.token(custos.KindEmployee, empSecurity)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1366, 768),
	}
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel chromedp.ID) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	step("sign in",
		chromedp.EmulateViewport(1366, 768),
		chromedp.Navigate(ce.ts.URL+"/console/"),
		// No session: the console sends the browser to the sign-in form.
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS("a.alertlink")),
		// The queue is sorted by risk: the first alert is the top one.
		chromedp.Click(chromedp.CSS("a.alertlink")),
		chromedp.WaitVisible(chromedp.ID("explanation")),
	)
	if got := text("explanation"); !strings.Contains(got, "Revealed 5 customers who left negative reviews of seller s-1") {
		t.Fatalf("explanation = %q", got)
	}
	if got := text("verify-result"); !strings.Contains(got, "Verified") {
		t.Fatalf("evidence verification = %q", got)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatal("screenshot is not a PNG")
	}
	out := filepath.Join(t.TempDir(), "console.png")
	if *screenshot != "" {
		out = *screenshot
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}

	step("employee page",
		chromedp.Navigate(ce.ts.URL+"/console/employees/"+empHarvester),
		chromedp.WaitVisible(chromedp.CSS("svg.chart")),
	)
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg.chart rect[fill]').length`))
	if err != nil {
		t.Fatal(err)
	}
	label, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("svg.chart"), "aria-label"))
	if err != nil {
		t.Fatal(err)
	}
	if bars < 5 || !strings.Contains(label.Value, "5 allow") {
		t.Fatalf("timeline chart: %d bars, label %q", bars, label.Value)
	}
	peers, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg.chart polyline').length`))
	if err != nil || peers != 2 {
		t.Fatalf("peer chart: %d lines, %v", peers, err)
	}

	step("suspend",
		chromedp.Navigate(ce.ts.URL+"/console/alerts/"+ce.alertID),
		chromedp.WaitVisible(chromedp.ID("suspend")),
		chromedp.SendKeys(chromedp.ID("s-note"), "alert "+ce.alertID),
		chromedp.Click(chromedp.ID("suspend")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
		chromedp.Navigate(ce.ts.URL+"/console/employees/"+empHarvester),
	)
	if got := strings.TrimSpace(text("emp-status")); got != custos.StatusSuspended {
		t.Fatalf("employee status after suspend = %q", got)
	}

	resp, body := ce.do("POST", "/v1/reveal", ce.token(custos.KindEmployee, empHarvester),
		strings.NewReader(`{"customer":"c-1","fields":["email"],"purpose":{"case":"k-h"},"want":"masked"}`))
	wantError(t, resp, body, http.StatusForbidden, custos.EFORBIDDEN)
}
