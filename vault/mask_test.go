package vault

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/custos/custos"
)

func TestMask(t *testing.T) {
	for _, tc := range []struct{ field, in, want string }{
		{custos.FieldEmail, "jane.doe@gmail.com", "j•••@g•••.com"},
		{custos.FieldEmail, "JD@Mail.Example.co.uk", "J•••@M•••.uk"},
		{custos.FieldEmail, "a@b.c", "a•••@b•••"},
		{custos.FieldEmail, "x@localhost", "x•••@l•••"},
		{custos.FieldEmail, "\"odd@local\"@example.org", "o•••@e•••.org"},
		{custos.FieldEmail, "zoë@bücher.de", "z•••@b•••.de"},
		{custos.FieldEmail, "user@example.123", "u•••@e•••"},
		{custos.FieldEmail, "user@example.averyveryverylongtldnameindeed", "u•••@e•••"},
		{custos.FieldEmail, "山田@例え.日本", "山•••@例•••.日本"},
		{custos.FieldEmail, "no-at-sign", "•••"},
		{custos.FieldEmail, "@example.com", "•••"},
		{custos.FieldEmail, "user@", "•••"},
		{custos.FieldEmail, "...@---", "•••"},
		{custos.FieldEmail, "", "•••"},
		{custos.FieldPhone, "+44 20 7946 0812", "•••••••12"},
		{custos.FieldPhone, "(555) 010-9999", "•••••••99"},
		{custos.FieldPhone, "+٩٧١ ٥٠ ١٢٣ ٤٥٦٧", "•••••••٦٧"},
		{custos.FieldPhone, "12345", "•••"},
		{custos.FieldPhone, "call me", "•••"},
		{custos.FieldPhone, "", "•••"},
		{custos.FieldName, "Jane Doe", "J••• D•••"},
		{custos.FieldName, "Jane Mary Ann Doe", "J••• D•••"},
		{custos.FieldName, "  jane   doe  ", "j••• d•••"},
		{custos.FieldName, "Madonna", "M•••"},
		{custos.FieldName, "Zoë Åström", "Z••• Å•••"},
		{custos.FieldName, "O'Brien, Seán", "O••• S•••"},
		{custos.FieldName, "(Dr.) Who", "D••• W•••"},
		{custos.FieldName, "山田 太郎", "山••• 太•••"},
		{custos.FieldName, "123 456", "•••"},
		{custos.FieldName, "", "•••"},
		{custos.FieldAddress, "1 High Street, Leeds LS1 1AA, United Kingdom", "•••, United Kingdom"},
		{custos.FieldAddress, "Musterstr. 1, 10115 Berlin", "•••"},
		{custos.FieldAddress, "10 Rue de Rivoli\n75001 Paris\nFrance", "•••, France"},
		{custos.FieldAddress, "Flat 2, 5 Elm Rd, UK", "•••, UK"},
		{custos.FieldAddress, "5 Elm Rd", "•••"},
		{custos.FieldAddress, "Somewhere, Côte d'Ivoire", "•••, Côte d'Ivoire"},
		{custos.FieldAddress, "x, A Very Long Country Name With Many Words", "•••"},
		{custos.FieldAddress, "x, apt 5", "•••"},
		{custos.FieldAddress, "", "•••"},
		{"ssn", "123-45-6789", "•••"},
	} {
		if got := Mask(tc.field, tc.in); got != tc.want {
			t.Errorf("Mask(%s, %q) = %q, want %q", tc.field, tc.in, got, tc.want)
		}
	}
}

func TestMaskFixedShape(t *testing.T) {
	// Hidden parts of different lengths give the same output.
	for _, tc := range []struct{ field, a, b string }{
		{custos.FieldEmail, "j@g.com", "jonathan.appleseed.the.third@gargantuan-mail.com"},
		{custos.FieldPhone, "555-0199", "+1 (800) 555 123 456 7899"},
		{custos.FieldName, "J D", "Jacqueline Dominique-Delacroix"},
		{custos.FieldAddress, "1 A St, UK", "Apartment 1234, 98765 Long Boulevard of Things, Springfield, UK"},
	} {
		if ma, mb := Mask(tc.field, tc.a), Mask(tc.field, tc.b); ma != mb {
			t.Errorf("%s: %q and %q differ in shape", tc.field, ma, mb)
		}
	}
}

func TestMaskInvalidUTF8(t *testing.T) {
	for _, f := range append(custos.PIIFields, "other") {
		for _, in := range []string{"\xff\xfe@\xff.com", "\xffJane \xc3Doe", "\xff\xff\xff\xff\xff\xff, \xff", "12\xff34\xff56"} {
			if got := Mask(f, in); !utf8.ValidString(got) {
				t.Errorf("Mask(%s, %q) = %q is not valid UTF-8", f, in, got)
			}
		}
	}
}

func FuzzMask(f *testing.F) {
	for _, s := range []string{"jane.doe@gmail.com", "+44 20 7946 0812", "Jane Doe", "1 High St, Leeds, UK", "\xff@\xff", "山田 太郎", ""} {
		for _, field := range custos.PIIFields {
			f.Add(field, s)
		}
	}
	f.Fuzz(func(t *testing.T, field, in string) {
		out := Mask(field, in)
		if !utf8.ValidString(out) {
			t.Fatal("output is not valid UTF-8")
		}
		// Bounded shape: dots, two kept characters and a bounded TLD or
		// country segment (up to four bytes a rune).
		if n := utf8.RuneCountInString(out); n > 2+2*3+2+maxCountryRunes {
			t.Fatalf("output has %d runes, over the fixed shape", n)
		}
		if !strings.Contains(out, "•••") {
			t.Fatal("output has no mask")
		}
		// Never the whole input, unless the input already looks masked.
		if utf8.RuneCountInString(in) >= 8 && !strings.Contains(in, "•") && strings.Contains(out, in) {
			t.Fatal("output contains the whole input")
		}
	})
}
