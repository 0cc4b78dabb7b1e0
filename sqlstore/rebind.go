package sqlstore

import (
	"strconv"
	"strings"
	"sync"
)

// stmtCache memoises rebound queries: most queries are constants.
type stmtCache struct{ m sync.Map }

func (c *stmtCache) get(d Dialect, q string) string {
	if v, ok := c.m.Load(q); ok {
		return v.(string)
	}
	r := d.Rebind(q)
	c.m.Store(q, r)
	return r
}

// RebindDollar turns ? placeholders into $1, $2 … (PostgreSQL). A ? inside a
// single-quoted string literal is left alone.
func RebindDollar(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	inStr := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inStr = !inStr
			b.WriteByte(c)
		case c == '?' && !inStr:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
