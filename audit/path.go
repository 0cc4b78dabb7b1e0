package audit

import (
	"strconv"
	"strings"

	"github.com/custos/custos"
)

// PathKind says what a tlog-tiles path names.
type PathKind int

// Path kinds.
const (
	PathCheckpoint PathKind = iota + 1 // "checkpoint"
	PathTile                           // "tile/<L>/<N>[.p/<W>]": hashes
	PathEntries                        // "tile/entries/<N>[.p/<W>]": an entry bundle
)

// TileWidth is the number of hashes in a full tile and of entries in a full
// entry bundle (C2SP tlog-tiles).
const TileWidth = 256

// maxTileIndex keeps N·256+255 inside a uint64.
const maxTileIndex = 1<<56 - 1

// TilePath is a parsed C2SP tlog-tiles path, relative to the log's prefix
// (custos serves them under /log/).
type TilePath struct {
	Kind  PathKind
	Level uint64 // tile level L (tree level 8·L); PathTile only
	Index uint64 // tile or bundle index N
	Width int    // 1 … 255 for a partial tile or bundle; 0 for a full one
}

// String returns the canonical path, the inverse of ParsePath.
func (p TilePath) String() string {
	var b strings.Builder
	switch p.Kind {
	case PathCheckpoint:
		return "checkpoint"
	case PathTile:
		b.WriteString("tile/")
		b.WriteString(strconv.FormatUint(p.Level, 10))
		b.WriteByte('/')
	case PathEntries:
		b.WriteString("tile/entries/")
	default:
		return ""
	}
	b.WriteString(formatIndex(p.Index))
	if p.Width > 0 {
		b.WriteString(".p/")
		b.WriteString(strconv.Itoa(p.Width))
	}
	return b.String()
}

// formatIndex writes N as zero-padded groups of three digits, every group
// but the last prefixed with "x": 1234567 is "x001/x234/567".
func formatIndex(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for len(s)%3 != 0 {
		s = "0" + s
	}
	var b strings.Builder
	for i := 0; i < len(s); i += 3 {
		if i+3 < len(s) {
			b.WriteByte('x')
			b.WriteString(s[i : i+3])
			b.WriteByte('/')
		} else {
			b.WriteString(s[i:])
		}
	}
	return b.String()
}

// TileIndexPath returns the path of hash tile (level, index) at width w
// (0 for a full tile).
func TileIndexPath(level, index uint64, w int) string {
	return TilePath{Kind: PathTile, Level: level, Index: index, Width: w}.String()
}

// EntriesPath returns the path of entry bundle index at width w (0 for a
// full bundle).
func EntriesPath(index uint64, w int) string {
	return TilePath{Kind: PathEntries, Index: index, Width: w}.String()
}

// ParsePath parses a C2SP tlog-tiles path relative to the log prefix:
// "checkpoint", "tile/<L>/<N>[.p/<W>]" or "tile/entries/<N>[.p/<W>]". It
// accepts only the canonical spelling (ParsePath(p).String() == p): level
// 0 … 63 and width 1 … 255 in decimal without leading zeros, N in
// three-digit groups with no leading "x000" group. Anything else returns
// EINVALID.
func ParsePath(p string) (TilePath, error) {
	bad := func() (TilePath, error) {
		return TilePath{}, custos.Errorf(custos.EINVALID, "malformed log path")
	}
	if p == "checkpoint" {
		return TilePath{Kind: PathCheckpoint}, nil
	}
	rest, ok := strings.CutPrefix(p, "tile/")
	if !ok {
		return bad()
	}
	var tp TilePath
	if r, ok := strings.CutPrefix(rest, "entries/"); ok {
		tp.Kind, rest = PathEntries, r
	} else {
		lv, r, ok := strings.Cut(rest, "/")
		if !ok {
			return bad()
		}
		l, ok := parseDecimal(lv, 63)
		if !ok {
			return bad()
		}
		tp.Kind, tp.Level, rest = PathTile, l, r
	}
	segs := strings.Split(rest, "/")
	last := len(segs) - 1
	if w, ok := strings.CutSuffix(segs[max(last-1, 0)], ".p"); ok && last >= 1 {
		width, ok := parseDecimal(segs[last], TileWidth-1)
		if !ok || width == 0 {
			return bad()
		}
		tp.Width = int(width)
		segs[last-1] = w
		segs = segs[:last]
		last--
	}
	for i, s := range segs {
		if i < last {
			if len(s) != 4 || s[0] != 'x' || (i == 0 && s == "x000") {
				return bad()
			}
			s = s[1:]
		} else if len(s) != 3 {
			return bad()
		}
		for j := 0; j < 3; j++ {
			if s[j] < '0' || s[j] > '9' {
				return bad()
			}
		}
		d := uint64(s[0]-'0')*100 + uint64(s[1]-'0')*10 + uint64(s[2]-'0')
		if tp.Index > (maxTileIndex-d)/1000 {
			return bad()
		}
		tp.Index = tp.Index*1000 + d
	}
	return tp, nil
}

// parseDecimal parses a decimal number ≤ limit with no sign and no leading
// zero.
func parseDecimal(s string, limit uint64) (uint64, bool) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
		if n > limit {
			return 0, false
		}
	}
	return n, true
}
