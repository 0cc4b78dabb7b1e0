package policy

import (
	"strings"
	"testing"

	"github.com/custos/custos"
)

func TestValidateJustification(t *testing.T) {
	const text = "customer asked to update the address"
	tests := []struct {
		name, code, text string
		errCode, field   string
	}{
		{"every listed code", "", text, "", ""},
		{"unknown code", "curiosity", text, custos.EINVALID, "purpose.code"},
		{"empty code", "", text, custos.EINVALID, "purpose.code"},
		{"code in another case", "Break_Glass", text, custos.EINVALID, "purpose.code"},
		{"19 characters", CodeBreakGlass, strings.Repeat("x", 19), custos.EINVALID, "purpose.text"},
		{"20 characters", CodeBreakGlass, strings.Repeat("x", 20), "", ""},
		{"20 characters of two bytes each", CodeBreakGlass, strings.Repeat("é", 20), "", ""},
		{"19 characters of two bytes each", CodeBreakGlass, strings.Repeat("é", 19), custos.EINVALID, "purpose.text"},
		{"padded with spaces", CodeBreakGlass, "   " + strings.Repeat("x", 10) + "          ", custos.EINVALID, "purpose.text"},
		{"not UTF-8", CodeBreakGlass, strings.Repeat("\xff", 30), custos.EINVALID, "purpose.text"},
		{"too long", CodeBreakGlass, strings.Repeat("x", MaxJustificationText+1), custos.ETOOLARGE, "purpose.text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codes := []string{tt.code}
			if tt.name == "every listed code" {
				codes = nil
				for _, j := range Justifications() {
					codes = append(codes, j.Code)
				}
			}
			for _, code := range codes {
				err := ValidateJustification(code, tt.text)
				if tt.errCode == "" {
					if err != nil {
						t.Fatalf("%s: %v", code, err)
					}
					continue
				}
				ce, ok := err.(*custos.Error)
				if !ok || ce.Code != tt.errCode || ce.Field != tt.field {
					t.Fatalf("%s: got %v, want %s on %s", code, err, tt.errCode, tt.field)
				}
				if strings.Contains(ce.Message, tt.text) && tt.text != "" {
					t.Fatal("message echoes the text")
				}
			}
		})
	}
}

func TestJustificationsList(t *testing.T) {
	want := []string{CodeCustomerInitiatedSupport, CodeFraudInvestigation, CodeSecurityInvestigation,
		CodeLegalRequest, CodeBreakGlass}
	got := Justifications()
	if len(got) != len(want) {
		t.Fatalf("%d codes, want %d", len(got), len(want))
	}
	for i, j := range got {
		if j.Code != want[i] || j.Description == "" || !KnownJustification(j.Code) {
			t.Errorf("code %d: %+v", i, j)
		}
	}
	got[0].Code = "mutated"
	if Justifications()[0].Code != want[0] {
		t.Error("Justifications returns the package's own slice")
	}
	// The context record cache must know every code, or decisions with a
	// new code would silently take the slow path.
	for _, code := range want {
		if contextKey(custos.FieldEmail, false, custos.PurposeCode, code, 0, false, false) < 0 {
			t.Errorf("code %s missing from contextCodes", code)
		}
	}
}
