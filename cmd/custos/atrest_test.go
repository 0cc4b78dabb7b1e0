package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos/custos"
	"github.com/custos/custos/audit"
	"github.com/custos/custos/internal/dbtest"
)

// atRestPII is what the at-rest test ingests and then looks for, byte for
// byte, in everything the database wrote. It is synthetic; the test never
// prints it.
var atRestPII = []string{
	"ada.lovelace.atrest@example.test", "+44 20 7946 0958", "Ada Atrest Lovelace",
	"grace.hopper.atrest@example.test", "+1 202 555 0143", "Grace Atrest Hopper",
}

// TestNoPlaintextAtRest ingests customers, reveals them at every level
// (with an approval for plaintext), and then reads the raw SQLite files
// (database and WAL) and a pg_dump of the PostgreSQL schema: no email,
// phone or name may appear in them.
func TestNoPlaintextAtRest(t *testing.T) {
	for _, b := range dbtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			var dbArgs []string
			dsn := ""
			if b.Name == "postgres" {
				if _, err := exec.LookPath("pg_dump"); err != nil {
					t.Skip("pg_dump not installed")
				}
				dsn = dbtest.PostgresSchema(t)
				dbArgs = []string{"--db", dsn}
			}
			dir := filepath.Join(t.TempDir(), "data")
			m, _ := startServe(t, append([]string{"--data", dir}, dbArgs...)...)
			c := client{t: t, base: "http://" + m.Addr().String()}
			tok := minter(t, dir)
			nd := `{"type":"employee","id":"e-a","name":"Agent","roles":["support_agent"],"team":"t","region":"EU","status":"active"}
{"type":"employee","id":"e-p","name":"Approver","roles":["approver"],"team":"o","region":"EU","status":"active"}
` + fmt.Sprintf(`{"type":"customer","id":"c-1","email":%q,"phone":%q,"name":%q,"address":"10 Downing Street, London, GB","region":"EU"}
{"type":"customer","id":"c-2","email":%q,"phone":%q,"name":%q,"address":"1600 Pennsylvania Ave, Washington, US","region":"US"}
`, atRestPII[0], atRestPII[1], atRestPII[2], atRestPII[3], atRestPII[4], atRestPII[5]) +
				`{"type":"case","id":"k-1","assignee":"e-a","status":"open","customers":["c-1","c-2"],"orders":[],"sellers":[],"opened_at":"2026-11-01T00:00:00Z"}
`
			if code, _ := c.do("POST", "/v1/ingest", tok(custos.KindService, "feed"), nd); code != 200 {
				t.Fatalf("ingest: %d", code)
			}
			agent := tok(custos.KindEmployee, "e-a")
			code, body := c.do("POST", "/v1/approvals", agent, `{"customer":"c-1","fields":["email","phone","name"],"purpose":{"case":"k-1"}}`)
			if code != 201 {
				t.Fatalf("approval: %d", code)
			}
			id := between(body, `"id":"`, `"`)
			if code, _ := c.do("POST", "/v1/approvals/"+id+"/decision", tok(custos.KindEmployee, "e-p"), `{"approve":true}`); code != 200 {
				t.Fatalf("approve: %d", code)
			}
			for _, want := range []string{"masked", "alias", "plaintext"} {
				for _, cust := range []string{"c-1", "c-2"} {
					code, body := c.do("POST", "/v1/reveal", agent, `{"customer":"`+cust+`","fields":["email","phone","name"],"purpose":{"case":"k-1"},"want":"`+want+`"}`)
					if code != 200 {
						t.Fatalf("reveal: %d", code)
					}
					if want == "plaintext" && cust == "c-1" && !strings.Contains(body, atRestPII[0]) {
						t.Fatal("the granted plaintext reveal did not return the email: the test would prove nothing")
					}
				}
			}
			// Read what the database wrote while the server still runs, so
			// the WAL is there too.
			var blobs [][]byte
			if dsn == "" {
				for _, name := range []string{DefaultDBFile, DefaultDBFile + "-wal"} {
					b, err := os.ReadFile(filepath.Join(dir, name))
					if err != nil {
						t.Fatalf("read %s: %v", name, err)
					}
					if len(b) == 0 {
						t.Fatalf("%s is empty", name)
					}
					blobs = append(blobs, b)
				}
			} else {
				u, _ := url.Parse(dsn)
				schema := u.Query().Get("search_path")
				q := u.Query()
				q.Del("search_path")
				u.RawQuery = q.Encode()
				out, err := exec.Command("pg_dump", "--data-only", "--schema", schema, u.String()).Output()
				if err != nil {
					t.Fatalf("pg_dump: %v", err)
				}
				if !bytes.Contains(out, []byte("c-1")) {
					t.Fatal("pg_dump holds no customer rows: the test would prove nothing")
				}
				blobs = append(blobs, out)
			}
			for i, b := range blobs {
				if audit.ContainsPII(b, atRestPII...) {
					t.Fatalf("plaintext PII found at rest (file %d)", i)
				}
			}
		})
	}
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}
