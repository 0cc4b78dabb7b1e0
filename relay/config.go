package relay

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/custos/custos"
)

// Defaults for Config.
const (
	DefaultMaxMessageBytes = 10 << 20
	DefaultMaxRecipients   = 50
	// DefaultMaxLineLength is RFC 5321's 1000 doubled, as go-smtp does:
	// lenient to sloppy clients, still bounded.
	DefaultMaxLineLength = 2000
	// DefaultReadTimeout bounds the wait for one command line, and for
	// the whole message after DATA.
	DefaultReadTimeout  = 60 * time.Second
	DefaultWriteTimeout = 60 * time.Second
	// DefaultSessionTimeout bounds a whole connection, however busy:
	// a client that trickles bytes just fast enough never holds a slot
	// longer than this.
	DefaultSessionTimeout = 10 * time.Minute
	DefaultMaxConns       = 200
	DefaultMaxConnsPerIP  = 20
	// DefaultForwardTimeout bounds each step of a forward to the
	// smarthost (dial, each command, the message).
	DefaultForwardTimeout = 30 * time.Second
	// DefaultMaxAuthFailures is how many failed AUTH attempts end a
	// connection.
	DefaultMaxAuthFailures = 3
)

// Default rates. Connections: 100 at once, then 20 a second, per client
// address. Commands of senders that are not the marketplace: 20 at once,
// then one every 3 s.
var (
	DefaultConnRate    = Rate{Every: 50 * time.Millisecond, Burst: 100}
	DefaultMessageRate = Rate{Every: 3 * time.Second, Burst: 20}
)

// Rate is a token bucket: Burst tokens at most, one more every Every. A
// negative Burst means no limit; the zero Rate means the field's default.
type Rate struct {
	Every time.Duration
	Burst int
}

// Unlimited is a Rate that never limits.
var Unlimited = Rate{Burst: -1}

// SenderIdentity is a configured marketplace sender: mail whose envelope
// sender is in Domain, from a client address inside Networks, counts as
// marketplace mail without SMTP AUTH.
//
// The check trusts the network, not the address: envelope senders are
// free text, so anyone who can connect from inside Networks can claim
// Domain. Keep Networks to the marketplace's own outbound mail hosts.
type SenderIdentity struct {
	Domain   string         // envelope sender domain, matched exactly (ASCII case-insensitive); no subdomains
	Networks []netip.Prefix // client addresses allowed to send as Domain
}

// ParseSenderIdentity parses "domain=prefix,prefix,…", e.g.
// "mail.marketplace.example=10.20.0.0/16,2001:db8::/48". A bare address
// counts as a single-address prefix.
func ParseSenderIdentity(s string) (SenderIdentity, error) {
	bad := func(msg string) (SenderIdentity, error) {
		return SenderIdentity{}, &custos.Error{Code: custos.EINVALID, Message: msg, Field: "sender_identity"}
	}
	dom, nets, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return bad("sender identity must be domain=network[,network…]")
	}
	d, ok := hostname(strings.TrimSpace(dom))
	if !ok {
		return bad("sender identity domain is not a hostname")
	}
	id := SenderIdentity{Domain: d}
	for _, n := range strings.Split(nets, ",") {
		n = strings.TrimSpace(n)
		p, err := netip.ParsePrefix(n)
		if err != nil {
			a, aerr := netip.ParseAddr(n)
			if aerr != nil {
				return bad("sender identity network is not an address or CIDR prefix")
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		id.Networks = append(id.Networks, p.Masked())
	}
	return id, nil
}

// AliasStore resolves alias local parts. custos.AccessStore implements it.
type AliasStore interface {
	// Alias returns the mapping of an alias local part, or ENOTFOUND.
	Alias(ctx context.Context, alias string) (*custos.AliasRecord, error)
}

// CustomerStore returns sealed customers. custos.EntityStore implements it.
type CustomerStore interface {
	// Customer returns one sealed customer, or ENOTFOUND.
	Customer(ctx context.Context, id string) (*custos.SealedCustomer, error)
}

// Opener opens sealed PII. *vault.Vault implements it.
type Opener interface {
	Open(s *custos.SealedCustomer) (custos.PII, error)
}

// Config configures a Server. Zero limits mean their defaults.
type Config struct {
	Addr     string // listen address for ListenAndServe, e.g. ":2525"
	Domain   string // the alias domain: the only domain mail is accepted for
	Hostname string // name in the greeting and Received header; Domain by default
	Forward  string // smarthost HOST:PORT that marketplace mail is forwarded through
	// ForwardTLS, when set, makes forwards use STARTTLS with it.
	ForwardTLS     *tls.Config
	ForwardTimeout time.Duration

	Aliases   AliasStore
	Customers CustomerStore
	Vault     Opener
	Log       custos.Appender // relay.forward and relay.reject entries
	Logger    *slog.Logger    // slog.Default() when nil
	Now       func() time.Time

	// Credentials enables SMTP AUTH PLAIN for the marketplace's
	// submission. AUTH is offered only over TLS (STARTTLS with TLSConfig)
	// or, with InsecureLoopbackAuth, to loopback clients.
	Credentials *Credentials
	// TLSConfig enables STARTTLS.
	TLSConfig *tls.Config
	// InsecureLoopbackAuth offers AUTH without TLS to clients on a
	// loopback address only (a submission agent on the same host).
	InsecureLoopbackAuth bool
	// Identities are marketplace senders recognised by envelope sender
	// domain and client network, without AUTH.
	Identities []SenderIdentity

	MaxMessageBytes int64
	MaxRecipients   int
	MaxLineLength   int
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	SessionTimeout  time.Duration
	MaxConns        int // concurrent connections in all
	MaxConnsPerIP   int // concurrent connections per client address (IPv6: per /64)
	ConnRate        Rate
	// MessageRate limits senders that are not the marketplace: each MAIL
	// and each RCPT they send takes a token. It bounds how fast anyone can
	// probe aliases or write reject entries into the audit log.
	MessageRate     Rate
	MaxAuthFailures int
}

func (c Config) withDefaults() Config {
	if c.Hostname == "" {
		c.Hostname = c.Domain
	}
	if c.ForwardTimeout <= 0 {
		c.ForwardTimeout = DefaultForwardTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = DefaultMaxRecipients
	}
	if c.MaxLineLength <= 0 {
		c.MaxLineLength = DefaultMaxLineLength
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.ConnRate == (Rate{}) {
		c.ConnRate = DefaultConnRate
	}
	if c.MessageRate == (Rate{}) {
		c.MessageRate = DefaultMessageRate
	}
	if c.MaxAuthFailures <= 0 {
		c.MaxAuthFailures = DefaultMaxAuthFailures
	}
	return c
}

// Validate checks c: a hostname for Domain, HOST:PORT for Forward, every
// store, the vault and the audit log set, sane identities and rates, and
// credentials only where AUTH can be offered. It returns an EINVALID
// *custos.Error naming the field.
func (c *Config) Validate() error {
	bad := func(field, msg string) error {
		return &custos.Error{Code: custos.EINVALID, Message: msg, Field: field}
	}
	if _, ok := hostname(c.Domain); !ok {
		return bad("domain", "relay domain must be a hostname")
	}
	if c.Hostname != "" {
		if _, ok := hostname(c.Hostname); !ok {
			return bad("hostname", "relay hostname must be a hostname")
		}
	}
	if host, port, err := net.SplitHostPort(c.Forward); err != nil || host == "" || port == "" {
		return bad("forward", "smarthost must be HOST:PORT")
	}
	switch {
	case c.Aliases == nil:
		return bad("aliases", "alias store is required")
	case c.Customers == nil:
		return bad("customers", "customer store is required")
	case c.Vault == nil:
		return bad("vault", "vault is required")
	case c.Log == nil:
		return bad("log", "audit log is required: no log, no delivery")
	}
	if c.Credentials != nil && c.Credentials.Len() > 0 && c.TLSConfig == nil && !c.InsecureLoopbackAuth {
		return bad("credentials", "credentials are set but AUTH would never be offered: set a TLS certificate or allow loopback AUTH")
	}
	for _, id := range c.Identities {
		if _, ok := hostname(id.Domain); !ok {
			return bad("identities", "sender identity domain is not a hostname")
		}
		if len(id.Networks) == 0 {
			return bad("identities", "sender identity has no networks")
		}
		for _, p := range id.Networks {
			if !p.IsValid() {
				return bad("identities", "sender identity network is not valid")
			}
		}
	}
	for field, r := range map[string]Rate{"conn_rate": c.ConnRate, "message_rate": c.MessageRate} {
		if r.Burst >= 0 && r != (Rate{}) && (r.Every <= 0 || r.Burst == 0) {
			return bad(field, "rate needs a positive interval and burst, or a negative burst for no limit")
		}
	}
	if c.MaxMessageBytes < 0 || c.MaxRecipients < 0 || c.MaxConns < 0 || c.MaxConnsPerIP < 0 {
		return bad("limits", "limits must not be negative")
	}
	return nil
}
