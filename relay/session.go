package relay

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/vault"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// storeTimeout bounds each store, vault or audit call made for one command.
const storeTimeout = 10 * time.Second

// Replies. They carry no PII: never an address other than what the client
// sent, never what a store or the smarthost said.
var (
	errBadSender = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7},
		Message: "Bad sender address syntax: want local@host with a dot-atom local part"}
	errBadRecipient = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3},
		Message: "Bad recipient address syntax: want local@host with a dot-atom local part"}
	errRelayDenied = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Relaying denied: this server accepts mail only for its own alias domain"}
	errNoSuchAlias = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
		Message: "No such alias"}
	// One reply for every refusal of a known alias, honeytoken or not, so
	// the reply never tells a sender which aliases are planted.
	errNotAuthorized = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Sender not authorized to send to this address; message refused"}
	errRate = &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 1},
		Message: "Too many commands from your address, try again later"}
	errTempFail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Temporary local failure, try again later"}
	errNextHopTemp = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 1},
		Message: "Next hop unavailable, try again later"}
	errNextHopPerm = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 0},
		Message: "Next hop refused the recipient"}
	errUndeliverable = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 0},
		Message: "Recipient has no deliverable address"}
	errReadFailed = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Error reading the message, try again"}
	errEncryptionRequired = &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11},
		Message: "Encryption required for authentication: use STARTTLS"}
	errAuthTooMany = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
		Message: "Too many authentication failures, closing connection"}
	errAuthIdentity = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
		Message: "Authentication failed"}
)

// session is one SMTP connection. go-smtp calls its methods one at a time.
type session struct {
	srv  *Server
	conn *smtp.Conn
	lc   *limitConn // nil when the listener was not ours (never in Serve)
	addr netip.Addr
	tls  bool

	authUser     string
	authFailures int

	// current transaction
	mailed       bool
	from         string
	senderDomain string
	market       string // "" unless the sender is the marketplace
	txID         string
	rcpts        []accepted
}

// accepted is one recipient the marketplace may send to.
type accepted struct {
	rec  *custos.AliasRecord
	cust *custos.SealedCustomer
}

func (s *session) Reset() {
	s.mailed, s.from, s.senderDomain, s.market, s.txID = false, "", "", "", ""
	s.rcpts = nil
}

func (s *session) Logout() error { return nil }

func (s *session) client() string {
	if !s.addr.IsValid() {
		return ""
	}
	return s.addr.String()
}

// opCtx bounds one command's store calls; Close cancels it.
func (s *session) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.srv.ctx, storeTimeout)
}

// authOffered reports whether AUTH is available on this connection: there
// are credentials, and the connection is TLS or (when allowed) loopback.
func (s *session) authOffered() bool {
	if s.srv.cfg.Credentials.Len() == 0 {
		return false
	}
	return s.tls || (s.srv.cfg.InsecureLoopbackAuth && s.addr.IsLoopback())
}

func (s *session) AuthMechanisms() []string {
	if !s.authOffered() {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if !s.authOffered() {
		if s.srv.cfg.Credentials.Len() > 0 && !s.tls {
			return nil, errEncryptionRequired
		}
		return nil, smtp.ErrAuthUnsupported
	}
	if !strings.EqualFold(mech, sasl.Plain) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, password string) error {
		if s.authFailures >= s.srv.cfg.MaxAuthFailures {
			return errAuthTooMany
		}
		name, ok := s.srv.cfg.Credentials.Check(user, password)
		if ok && (identity == "" || identity == user) {
			s.authUser = name
			s.srv.log.Info("relay client authenticated", slog.String("client", s.client()), slog.String("user", name))
			return nil
		}
		// A failure costs a message token too, so guessing is as slow as
		// sending. The user name is not logged: it may be a password typed
		// into the wrong field.
		s.authFailures++
		s.srv.lim.message(s.addr)
		s.srv.log.Warn("relay authentication failed", slog.String("client", s.client()), slog.Int("failures", s.authFailures))
		if s.authFailures >= s.srv.cfg.MaxAuthFailures {
			if s.lc != nil {
				s.lc.expireReads()
			}
			return errAuthTooMany
		}
		if ok {
			return errAuthIdentity
		}
		return smtp.ErrAuthFailed
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.Reset()
	domain := ""
	if from != "" { // "" is the null sender <>
		_, d, err := splitAddress(from)
		if err != nil {
			return errBadSender
		}
		domain = d
	}
	market := s.srv.marketplace(s.authUser, domain, s.addr)
	if market == "" && !s.srv.lim.message(s.addr) {
		if s.srv.logFlood(s.addr) {
			s.srv.log.Warn("relay rate limited", slog.String("client", s.client()), slog.String("command", "MAIL"))
		}
		return errRate
	}
	s.mailed, s.from, s.senderDomain, s.market = true, from, domain, market
	s.txID = newID("smtp-")
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !s.mailed {
		return errTempFail // go-smtp enforces MAIL first; never reached
	}
	if s.market == "" && !s.srv.lim.message(s.addr) {
		if s.srv.logFlood(s.addr) {
			s.srv.log.Warn("relay rate limited", slog.String("client", s.client()), slog.String("command", "RCPT"))
		}
		return errRate
	}
	_, domain, err := splitAddress(to)
	if err != nil {
		return errBadRecipient
	}
	if domain != s.srv.domain {
		s.srv.log.Info("relay denied", slog.String("client", s.client()), slog.String("rcpt_domain", domain))
		return errRelayDenied
	}
	local, err := vault.ParseAlias(to, s.srv.domain)
	if err != nil {
		return errNoSuchAlias
	}

	ctx, cancel := s.opCtx()
	defer cancel()
	rec, err := s.srv.cfg.Aliases.Alias(ctx, local)
	if custos.ErrorCode(err) == custos.ENOTFOUND {
		s.srv.log.Info("relay unknown alias", slog.String("alias", local), slog.String("client", s.client()))
		return errNoSuchAlias
	}
	if err != nil {
		s.srv.log.Error("relay alias lookup failed", slog.String("alias", local), slog.String("code", custos.ErrorCode(err)))
		return errTempFail
	}
	cust, err := s.srv.cfg.Customers.Customer(ctx, rec.Customer)
	switch {
	case custos.ErrorCode(err) == custos.ENOTFOUND:
		cust = nil // the alias still names who was shown it
	case err != nil:
		s.srv.log.Error("relay customer lookup failed", slog.String("customer", rec.Customer), slog.String("code", custos.ErrorCode(err)))
		return errTempFail
	}
	honey := cust != nil && cust.Honey

	if honey || s.market == "" {
		reason := custos.RelayReasonSender
		if honey {
			reason = custos.RelayReasonHoney
		}
		idx, err := s.srv.cfg.Log.Append(ctx, s.entry(custos.ActionRelayReject, custos.OverallDeny, rec, honey, reason))
		if err != nil {
			// No evidence, no answer: a temporary failure makes the sender
			// come back, and the next attempt is recorded.
			s.srv.log.Error("relay reject not recorded", slog.String("alias", local), slog.String("code", custos.ErrorCode(err)))
			return errTempFail
		}
		// The honey flag stays out of the logs: operators read them.
		s.srv.log.Warn("relay refused mail to alias", slog.String("alias", local), slog.String("customer", rec.Customer),
			slog.String("viewer", rec.Viewer), slog.String("client", s.client()), slog.String("sender_domain", s.senderDomain),
			slog.Uint64("audit_index", idx))
		return errNotAuthorized
	}
	if cust == nil {
		s.srv.log.Warn("relay alias of unknown customer", slog.String("alias", local), slog.String("customer", rec.Customer))
		return errNoSuchAlias
	}
	for _, a := range s.rcpts {
		if a.rec.Alias == rec.Alias {
			return nil // same alias twice: forward once
		}
	}
	s.rcpts = append(s.rcpts, accepted{rec: rec, cust: cust})
	return nil
}

func (s *session) Data(r io.Reader) error {
	msg, err := io.ReadAll(r)
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se // 552 over MaxMessageBytes
		}
		return errReadFailed
	}
	hdr := s.received()
	var worst *smtp.SMTPError
	for _, a := range s.rcpts {
		if err := s.deliver(a, hdr, msg); err != nil {
			// A temporary failure wins over a permanent one: the sender
			// retries the whole message (the forward is at-least-once).
			if worst == nil || err.Code/100 == 4 {
				worst = err
			}
		}
	}
	if worst != nil {
		return worst
	}
	return nil
}

// deliver records and forwards one message to one accepted alias.
func (s *session) deliver(a accepted, hdr string, msg []byte) *smtp.SMTPError {
	ctx, cancel := context.WithTimeout(s.srv.ctx, storeTimeout+3*s.srv.cfg.ForwardTimeout)
	defer cancel()
	pii, err := s.srv.cfg.Vault.Open(a.cust)
	if err != nil {
		s.srv.log.Error("relay vault open failed", slog.String("customer", a.cust.ID), slog.String("code", custos.ErrorCode(err)))
		return errTempFail
	}
	to := pii.Email
	pii = custos.PII{}
	if _, _, err := splitAddress(to); err != nil {
		s.srv.log.Warn("relay customer has no deliverable email", slog.String("customer", a.cust.ID))
		return errUndeliverable
	}
	idx, err := s.srv.cfg.Log.Append(ctx, s.entry(custos.ActionRelayForward, custos.OverallAllow, a.rec, false, ""))
	if err != nil {
		s.srv.log.Error("relay forward not recorded; not delivered", slog.String("alias", a.rec.Alias), slog.String("code", custos.ErrorCode(err)))
		return errTempFail
	}
	if err := s.srv.forward(ctx, s.from, to, hdr, msg); err != nil {
		var se *smtp.SMTPError
		attrs := []any{slog.String("alias", a.rec.Alias), slog.String("customer", a.cust.ID), slog.Uint64("audit_index", idx)}
		if errors.As(err, &se) {
			// Only the code: the smarthost's text may quote the address.
			attrs = append(attrs, slog.Int("smtp_code", se.Code))
			s.srv.log.Warn("relay forward refused by smarthost", attrs...)
			if se.Code/100 == 5 {
				return errNextHopPerm
			}
			return errNextHopTemp
		}
		attrs = append(attrs, slog.String("err", err.Error()))
		s.srv.log.Warn("relay forward failed", attrs...)
		return errNextHopTemp
	}
	s.srv.log.Info("relay forwarded", slog.String("alias", a.rec.Alias), slog.String("customer", a.cust.ID),
		slog.String("sender", s.market), slog.Uint64("audit_index", idx))
	return nil
}

// entry builds a relay audit entry. Its detail holds ids, a domain and
// fixed words only (custos.Relay* keys).
func (s *session) entry(action, decision string, rec *custos.AliasRecord, honey bool, reason string) *custos.AuditEntry {
	d := map[string]string{
		custos.RelayCustomer:     rec.Customer,
		custos.RelayViewer:       rec.Viewer,
		custos.RelayFirstIndex:   strconv.FormatUint(rec.AuditIndex, 10),
		custos.RelaySenderDomain: s.senderDomain,
		custos.RelayClient:       s.client(),
		custos.RelayHoney:        strconv.FormatBool(honey),
	}
	if reason != "" {
		d[custos.RelayReason] = reason
	}
	if s.market != "" {
		d[custos.RelaySender] = s.market
	}
	return &custos.AuditEntry{
		Time:      s.srv.cfg.Now().UTC(),
		Actor:     custos.Actor{Kind: custos.KindService, ID: "relay"},
		Action:    action,
		Resource:  custos.Resource{Type: custos.ResourceAlias, ID: rec.Alias},
		Decision:  decision,
		RequestID: s.txID,
		Client:    s.client(),
		Detail:    d,
	}
}

// received is the trace header the relay prepends (RFC 5321 §4.4). It
// names the client and this relay, not the recipient.
func (s *session) received() string {
	proto := "ESMTP"
	if s.tls {
		proto += "S"
	}
	if s.authUser != "" {
		proto += "A"
	}
	ip := "unknown"
	if s.addr.IsValid() {
		ip = s.addr.String()
		if s.addr.Is6() {
			ip = "IPv6:" + ip
		}
	}
	return "Received: from " + sanitizeHelo(s.conn.Hostname()) + " ([" + ip + "])\r\n" +
		"\tby " + s.srv.cfg.Hostname + " (custos relay) with " + proto + " id " + s.txID + ";\r\n" +
		"\t" + s.srv.cfg.Now().UTC().Format(time.RFC1123Z) + "\r\n"
}
