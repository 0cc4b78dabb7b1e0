package relay

import (
	"context"
	"net"

	"github.com/emersion/go-smtp"
)

// forward sends one message through the smarthost to one recipient: the
// original envelope sender, the customer's real address as the only
// envelope recipient, and the message as received with hdr (the Received
// line) in front. Headers are not touched. Errors from the smarthost are
// *smtp.SMTPError; their text may quote the address, so callers MUST NOT
// log or relay it.
func (s *Server) forward(ctx context.Context, from, to, hdr string, msg []byte) error {
	d := net.Dialer{Timeout: s.cfg.ForwardTimeout}
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Forward)
	if err != nil {
		return err
	}
	// The context ends the whole exchange, not just the dial.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var c *smtp.Client
	if s.cfg.ForwardTLS != nil {
		tc := s.cfg.ForwardTLS.Clone()
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(s.cfg.Forward)
		}
		if c, err = smtp.NewClientStartTLS(conn, tc); err != nil {
			conn.Close()
			return err
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	c.CommandTimeout = s.cfg.ForwardTimeout
	c.SubmissionTimeout = s.cfg.ForwardTimeout
	if err := c.Hello(s.cfg.Hostname); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(hdr)); err != nil {
		w.Close()
		return err
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	c.Quit() // delivered once the DATA reply came; QUIT is courtesy
	return nil
}
