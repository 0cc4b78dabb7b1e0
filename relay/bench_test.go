package relay_test

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/custos/custos/internal/dbtest"
	"github.com/custos/custos/relay"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// benchClients is how many SMTP connections send at once.
const benchClients = 8

// BenchmarkRelay measures relay throughput in messages per second with
// benchClients concurrent Go SMTP clients on loopback, over SQLite and a
// real audit log. accepted: authenticated marketplace mail, each message
// audited and forwarded to the sink on a new smarthost connection.
// rejected: mail from an outside sender to a known alias, each refused at
// RCPT with a relay.reject entry.
func BenchmarkRelay(b *testing.B) {
	for _, mode := range []string{"accepted", "rejected"} {
		b.Run(mode, func(b *testing.B) {
			w := newWorld(b, dbtest.SQLite(b))
			h := startWith(b, w, relay.Config{MaxConnsPerIP: benchClients * 2}, nil, newSink(b, nil))
			a := w.shown["e-agent/c-1"]
			body := mailText(a.addr)
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, benchClients)
			b.ResetTimer()
			for range benchClients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := benchClient(h.addr, mode, a.addr, body, &next, int64(b.N)); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if mode == "accepted" && len(h.sink.messages()) != b.N {
				b.Fatalf("sink got %d messages, want %d", len(h.sink.messages()), b.N)
			}
		})
	}
}

// benchClient sends messages on one connection until n have been sent in
// all.
func benchClient(addr, mode, to, body string, next *atomic.Int64, n int64) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("bench.test"); err != nil {
		return err
	}
	from := "seller@broker.test"
	if mode == "accepted" {
		if err := c.Auth(sasl.NewPlainClient("", marketUser, marketPass)); err != nil {
			return err
		}
		from = marketFrom
	}
	for next.Add(1) <= n {
		if err := c.Mail(from, nil); err != nil {
			return err
		}
		err := c.Rcpt(to, nil)
		if mode == "rejected" {
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != 550 {
				return errors.New("rejected mode: RCPT was not refused with 550")
			}
			if err := c.Reset(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		wc, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := wc.Write([]byte(strings.ReplaceAll(body, "\r\n", "\n"))); err != nil {
			return err
		}
		if err := wc.Close(); err != nil {
			return err
		}
	}
	return c.Quit()
}
