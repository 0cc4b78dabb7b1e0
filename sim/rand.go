package sim

import (
	"math"
	"math/rand/v2"
)

// Streams separate the random sequences of the generator's stages, so that
// changing how one stage draws leaves the others' output unchanged.
const (
	streamEmployees uint64 = iota + 1
	streamSellers
	streamCustomers
	streamOrders
	streamReviews
	streamSales
	streamCases
	streamResign
	streamHoney
	streamCaseTraffic
	streamDayTraffic
	streamIncidents
	streamScenario
	streamIDs
)

// mix64 is the SplitMix64 finaliser: a bijective scramble of 64 bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// newRand returns a PCG generator for seed and a path of stream keys.
// Never the global source: output must depend on the seed alone.
func newRand(seed uint64, keys ...uint64) *rand.Rand {
	h := mix64(seed ^ 0x6a09e667f3bcc908)
	for _, k := range keys {
		h = mix64(h ^ mix64(k+0x9e3779b97f4a7c15))
	}
	return rand.New(rand.NewPCG(seed, h))
}

// hashString is FNV-1a, used to key random streams by a name.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// aliasTable samples an index with probability proportional to its weight
// in O(1) (Vose's alias method).
type aliasTable struct {
	prob  []float64
	alias []int32
}

func newAliasTable(w []float64) *aliasTable {
	n := len(w)
	t := &aliasTable{prob: make([]float64, n), alias: make([]int32, n)}
	if n == 0 {
		return t
	}
	var sum float64
	for _, x := range w {
		sum += x
	}
	scaled := make([]float64, n)
	small := make([]int32, 0, n)
	large := make([]int32, 0, n)
	for i, x := range w {
		scaled[i] = x * float64(n) / sum
		if scaled[i] < 1 {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s := small[len(small)-1]
		small = small[:len(small)-1]
		l := large[len(large)-1]
		t.prob[s] = scaled[s]
		t.alias[s] = l
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range large {
		t.prob[i] = 1
		t.alias[i] = i
	}
	for _, i := range small {
		t.prob[i] = 1
		t.alias[i] = i
	}
	return t
}

func (t *aliasTable) pick(r *rand.Rand) int {
	i := r.IntN(len(t.prob))
	if r.Float64() < t.prob[i] {
		return i
	}
	return int(t.alias[i])
}

// poisson draws a Poisson variate; a normal approximation above 30.
func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		n := int(math.Round(lambda + math.Sqrt(lambda)*r.NormFloat64()))
		return max(n, 0)
	}
	l := math.Exp(-lambda)
	k, p := 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// roundRandom rounds x down or up with probability equal to its fraction,
// so that a rate of 2.5 a day averages 2.5.
func roundRandom(r *rand.Rand, x float64) int {
	if x <= 0 {
		return 0
	}
	f := math.Floor(x)
	if r.Float64() < x-f {
		f++
	}
	return int(f)
}

// between returns a uniform int64 in [lo, hi); lo if the range is empty.
func between(r *rand.Rand, lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + r.Int64N(hi-lo)
}

// weighted picks an index by small integer weights.
func weighted(r *rand.Rand, w []int) int {
	sum := 0
	for _, x := range w {
		sum += x
	}
	n := r.IntN(sum)
	for i, x := range w {
		if n < x {
			return i
		}
		n -= x
	}
	return len(w) - 1
}

// permute32 is a keyed bijection on 32 bits (a four-round Feistel network).
// Case ids come from it so they are unique but say nothing about when or
// by whom a case was made: a detector cannot key on id order.
func permute32(key uint64, x uint32) uint32 {
	l, r := uint16(x>>16), uint16(x)
	for i := uint64(0); i < 4; i++ {
		l, r = r, l^uint16(mix64(uint64(r)^mix64(key+i)))
	}
	return uint32(l)<<16 | uint32(r)
}

// unpermute32 inverts permute32.
func unpermute32(key uint64, y uint32) uint32 {
	l, r := uint16(y>>16), uint16(y)
	for i := uint64(4); i > 0; i-- {
		l, r = r^uint16(mix64(uint64(l)^mix64(key+i-1))), l
	}
	return uint32(l)<<16 | uint32(r)
}
