package relay_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/relay"
)

// FuzzSession throws arbitrary client input at a running relay with no
// credentials given: the relay must keep serving, and nothing may reach the
// smarthost.
func FuzzSession(f *testing.F) {
	w := newWorld(f, dbtest.SQLite(f))
	h := start(f, w, relay.Config{ReadTimeout: 200 * time.Millisecond, MaxMessageBytes: 4096, MaxRecipients: 5}, nil)
	a := w.shown["e-agent/c-1"]
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<" + a.addr + ">\r\nDATA\r\nhi\r\n.\r\n",
		"HELO x\r\nMAIL FROM:<" + marketFrom + ">\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n",
		"EHLO x\r\nAUTH PLAIN AG1hcmtldAB3cm9uZw==\r\nMAIL FROM:<>\r\nRCPT TO:<@a,@b:x@" + domain + ">\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test> SIZE=99999999999\r\nBDAT 5 LAST\r\nhello",
		"EHLO x\r\nMAIL FROM:<a@b.test> BODY=BINARYMIME\r\nRCPT TO:<" + strings.ToUpper(a.addr) + ">\r\nRSET\r\nVRFY x\r\n",
		"EHLO x\r\nSTARTTLS\r\n\x16\x03\x01",
		"\x00\xff\r\n\r\n\n\n" + strings.Repeat("A", 3000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(in))
		c.Write([]byte("\r\n.\r\nQUIT\r\n"))
		io.Copy(io.Discard, c) // until the relay hangs up (QUIT or its read timeout)

		if n := len(h.sink.messages()); n != 0 {
			t.Fatalf("unauthenticated input got %d messages delivered", n)
		}
		// Still serving.
		c2, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.SetDeadline(time.Now().Add(5 * time.Second))
		if g, err := readReply(c2); err != nil || !strings.HasPrefix(g, "220 ") {
			t.Fatalf("relay stopped serving: %q, %v", g, err)
		}
	})
}
