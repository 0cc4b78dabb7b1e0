package honey

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/custos/custos"
)

func TestShapeOf(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name   string
		sample []string
		check  func(string) bool
	}{
		{"padded numbers", []string{"c-000010", "c-000200", "c-001000"}, func(s string) bool {
			return len(s) == 8 && strings.HasPrefix(s, "c-") && strings.Trim(s[2:], "0123456789") == "" && s[2:] >= "000010" && s[2:] <= "001263"
		}},
		{"unpadded numbers", []string{"c-7", "c-42", "c-1000"}, func(s string) bool {
			return strings.HasPrefix(s, "c-") && s[2] != '0' && strings.Trim(s[2:], "0123456789") == "" && len(s) <= 6
		}},
		{"hex", []string{"cus_9f86d081884c7d65", "cus_0a1b2c3d4e5f6a7b"}, func(s string) bool {
			return strings.HasPrefix(s, "cus_") && len(s) == 20 && strings.Trim(s[4:], "0123456789abcdef") == ""
		}},
		{"upper alnum", []string{"ORD-A1B2C3", "ORD-ZZ9Y8X"}, func(s string) bool {
			return strings.HasPrefix(s, "ORD-") && len(s) == 10 && strings.Trim(s[4:], "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
		}},
		{"single", []string{"r-0000042"}, func(s string) bool {
			return strings.HasPrefix(s, "r-") && len(s) == 9
		}},
		{"no prefix", []string{"1234", "5678"}, func(s string) bool {
			return len(s) == 4 && strings.Trim(s, "0123456789") == ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh, err := shapeOf("customer", tc.sample)
			if err != nil {
				t.Fatal(err)
			}
			for range 200 {
				if id := sh.gen(r); !tc.check(id) {
					t.Fatalf("generated %q for sample %v", id, tc.sample)
				}
			}
		})
	}
	for name, sample := range map[string][]string{
		"empty":       nil,
		"empty id":    {"c-1", ""},
		"prefix only": {"c-1", "c-"},
		"punctuation": {"c-1", "c-1.5"},
		"too long":    {strings.Repeat("a", 129)},
	} {
		if _, err := shapeOf("customer", sample); custos.ErrorCode(err) != custos.EINVALID {
			t.Errorf("%s: err = %v, want EINVALID", name, err)
		}
	}
}

// FuzzShapeOf: any accepted sample yields ids with its prefix, drawn from
// the sample's alphabet, at most one character longer than its longest id
// (a numeric range reaches a quarter of its span above the largest).
func FuzzShapeOf(f *testing.F) {
	f.Add("c-0001\nc-0420")
	f.Add("cus_ab12\ncus_ff00")
	f.Add("x")
	f.Add("9\n18446744073709551615")
	f.Fuzz(func(t *testing.T, in string) {
		sample := strings.Split(in, "\n")
		sh, err := shapeOf("customer", sample)
		if err != nil {
			return
		}
		longest := 0
		for _, s := range sample {
			longest = max(longest, len(s))
		}
		r := rand.New(rand.NewPCG(3, 4))
		for range 20 {
			id := sh.gen(r)
			if !strings.HasPrefix(id, sh.prefix) || len(id) > longest+1 {
				t.Fatalf("sample %q gave %q", sample, id)
			}
			for _, c := range id[len(sh.prefix):] {
				if !strings.ContainsRune(sh.alphabet, c) {
					t.Fatalf("sample %q gave %q outside alphabet %q", sample, id, sh.alphabet)
				}
			}
		}
	})
}
