package relay

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// maxTracked bounds the number of client keys the limiter remembers; past
// it, idle keys (no connection, bucket refilled) are swept.
const maxTracked = 100_000

// clientKey is what limits count against: an IPv4 address, or the /64 of
// an IPv6 address (one subscriber usually holds a whole /64, so counting
// single IPv6 addresses would let one client pass as billions).
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p
	}
	return netip.PrefixFrom(a, a.BitLen())
}

// addrOf returns the IP address of a net.Addr (the zero Addr if it has
// none, e.g. a pipe).
func addrOf(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

type bucket struct {
	tokens float64
	last   time.Time
}

// take refills b for the time since its last use and takes one token.
func (b *bucket) take(r Rate, now time.Time) bool {
	if r.Burst < 0 {
		return true
	}
	if b.last.IsZero() {
		b.tokens = float64(r.Burst)
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(r.Burst), b.tokens+float64(d)/float64(r.Every))
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports whether b has refilled completely by now, i.e. forgetting
// it changes nothing.
func (b *bucket) full(r Rate, now time.Time) bool {
	return r.Burst < 0 || b.tokens+float64(now.Sub(b.last))/float64(r.Every) >= float64(r.Burst)
}

type clientState struct {
	conns int
	conn  bucket
	msg   bucket
}

// limiter holds per-client connection counts and token buckets.
type limiter struct {
	now      func() time.Time
	maxConns int
	perIP    int
	connRate Rate
	msgRate  Rate

	mu      sync.Mutex
	total   int
	clients map[netip.Prefix]*clientState
}

func newLimiter(cfg *Config) *limiter {
	return &limiter{now: cfg.Now, maxConns: cfg.MaxConns, perIP: cfg.MaxConnsPerIP,
		connRate: cfg.ConnRate, msgRate: cfg.MessageRate, clients: map[netip.Prefix]*clientState{}}
}

// Why a connection was refused.
const (
	refuseNone = iota
	refuseBusy
	refusePerIP
	refuseRate
)

// open admits a new connection from a, or says why not. An admitted
// connection MUST be released with close.
func (l *limiter) open(a netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.maxConns {
		return refuseBusy
	}
	st := l.state(clientKey(a))
	if st.conns >= l.perIP {
		return refusePerIP
	}
	if !st.conn.take(l.connRate, l.now()) {
		return refuseRate
	}
	st.conns++
	l.total++
	return refuseNone
}

func (l *limiter) close(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.clients[clientKey(a)]; st != nil && st.conns > 0 {
		st.conns--
	}
	l.total--
}

// message takes one message token for a.
func (l *limiter) message(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state(clientKey(a)).msg.take(l.msgRate, l.now())
}

func (l *limiter) state(k netip.Prefix) *clientState {
	st := l.clients[k]
	if st != nil {
		return st
	}
	if len(l.clients) >= maxTracked {
		now := l.now()
		for k, s := range l.clients {
			if s.conns == 0 && s.conn.full(l.connRate, now) && s.msg.full(l.msgRate, now) {
				delete(l.clients, k)
			}
		}
	}
	st = &clientState{}
	l.clients[k] = st
	return st
}

// limitListener admits connections through a limiter. Refused connections
// get a 421 reply and are closed without reaching the SMTP server.
type limitListener struct {
	net.Listener
	lim      *limiter
	hostname string
	session  time.Duration // SessionTimeout
	onRefuse func(a netip.Addr, why int)
	refusing chan struct{} // semaphore bounding goroutines that write refusals
}

func (ln *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a := addrOf(c.RemoteAddr())
		if why := ln.lim.open(a); why != refuseNone {
			ln.onRefuse(a, why)
			ln.refuse(c, why)
			continue
		}
		// Deadlines are wall-clock time, whatever clock the limiter uses.
		lc := &limitConn{Conn: c, ln: ln, addr: a, end: time.Now().Add(ln.session)}
		lc.SetDeadline(time.Time{})
		return lc, nil
	}
}

func (ln *limitListener) refuse(c net.Conn, why int) {
	select {
	case ln.refusing <- struct{}{}:
	default:
		c.Close() // too many refusals in flight: no reply at all
		return
	}
	go func() {
		defer func() { <-ln.refusing }()
		msg := "421 4.7.0 " + ln.hostname + " too many connections from your address, try again later\r\n"
		if why == refuseBusy {
			msg = "421 4.3.2 " + ln.hostname + " too busy, try again later\r\n"
		}
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write([]byte(msg))
		c.Close()
	}()
}

// limitConn releases its limiter slot once, and caps every deadline at the
// end of the session.
type limitConn struct {
	net.Conn
	ln      *limitListener
	addr    netip.Addr
	end     time.Time
	readEnd atomic.Int64 // unix ns; 0 means end; set by expireReads
	closed  atomic.Bool
}

// expireReads makes every read from now on time out at once, while writes
// still go out: the reply that explains the hang-up reaches the client,
// then go-smtp's read fails and it closes the connection.
func (c *limitConn) expireReads() {
	c.readEnd.Store(time.Now().UnixNano())
	c.Conn.SetReadDeadline(time.Now())
}

func (c *limitConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.ln.lim.close(c.addr)
	}
	return c.Conn.Close()
}

func (c *limitConn) cap(t time.Time) time.Time {
	if t.IsZero() || t.After(c.end) {
		return c.end
	}
	return t
}

func (c *limitConn) readCap(t time.Time) time.Time {
	t = c.cap(t)
	if n := c.readEnd.Load(); n != 0 && t.UnixNano() > n {
		return time.Unix(0, n)
	}
	return t
}

func (c *limitConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(c.cap(t)); err != nil {
		return err
	}
	return c.Conn.SetReadDeadline(c.readCap(t))
}
func (c *limitConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.readCap(t)) }
func (c *limitConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.cap(t)) }
