package card

import (
	"fmt"
	"testing"
)

func TestDetectBrandKnownPANs(t *testing.T) {
	tests := []struct {
		pan  string
		want Brand
	}{
		{"4111111111111111", BrandVisa},
		{"4222222222222", BrandVisa},
		{"5555555555554444", BrandMastercard},
		{"5105105105105100", BrandMastercard},
		{"2223003122003222", BrandMastercard},
		{"2221000000000009", BrandMastercard},
		{"378282246310005", BrandAmex},
		{"371449635398431", BrandAmex},
		{"6011111111111117", BrandDiscover},
		{"3530111333300000", BrandJCB},
		{"3566002020360505", BrandJCB},
		{"30569309025904", BrandDiners},
		{"38520000023237", BrandDiners},
		{"36227206271667", BrandDiners},
		{"6200000000000005", BrandUnionPay},
		{"6205500000000000004", BrandUnionPay},
		{"6759649826438453", BrandMaestro},
		{"2201382000000013", BrandMir},
	}
	for _, tt := range tests {
		if got := DetectBrand(tt.pan); got != tt.want {
			t.Errorf("DetectBrand(%s) = %v, want %v", maskForTest(tt.pan), got, tt.want)
		}
	}
}

func TestDetectBrandBoundaries(t *testing.T) {
	tests := []struct {
		prefix string
		want   Brand
	}{
		{"", BrandUnknown}, {"x4", BrandUnknown}, {"4", BrandVisa}, {"49", BrandVisa},
		{"50", BrandMaestro}, {"51", BrandMastercard}, {"55", BrandMastercard},
		{"56", BrandMaestro}, {"58", BrandMaestro}, {"59", BrandUnknown},
		{"2199", BrandUnknown}, {"2200", BrandMir}, {"2204", BrandMir}, {"2205", BrandUnknown},
		{"2220", BrandUnknown}, {"2221", BrandMastercard}, {"2720", BrandMastercard},
		{"2721", BrandUnknown}, {"22", BrandUnknown}, {"222", BrandUnknown},
		{"33", BrandUnknown}, {"34", BrandAmex}, {"35", BrandUnknown}, {"37", BrandAmex},
		{"3527", BrandUnknown}, {"3528", BrandJCB}, {"3589", BrandJCB}, {"3590", BrandUnknown},
		{"299", BrandUnknown}, {"300", BrandDiners}, {"305", BrandDiners}, {"306", BrandUnknown},
		{"36", BrandDiners}, {"38", BrandDiners}, {"39", BrandUnknown},
		{"6010", BrandUnknown}, {"6011", BrandDiscover}, {"6012", BrandUnknown},
		{"643", BrandUnknown}, {"644", BrandDiscover}, {"649", BrandDiscover}, {"65", BrandDiscover},
		{"62", BrandUnionPay}, {"6220", BrandUnionPay}, {"6221", BrandUnionPay},
		{"6303", BrandUnknown}, {"6304", BrandMaestro}, {"6305", BrandUnknown},
		{"66", BrandUnknown}, {"67", BrandMaestro}, {"6759", BrandMaestro}, {"68", BrandUnknown},
		{"1", BrandUnknown}, {"9", BrandUnknown}, {"0", BrandUnknown},
	}
	for _, tt := range tests {
		// Pad with digits so the answer cannot depend on input length (only
		// where padding cannot reach a longer range).
		inputs := []string{tt.prefix}
		if tt.want != BrandUnknown || len(tt.prefix) >= 4 {
			inputs = append(inputs, tt.prefix+"0000000000000", tt.prefix+"9999999999999")
		}
		for _, s := range inputs {
			if got := DetectBrand(s); got != tt.want {
				t.Errorf("DetectBrand(prefix %q) = %v, want %v", tt.prefix, got, tt.want)
			}
			if got := DetectBrand([]byte(s)); got != tt.want {
				t.Errorf("DetectBrand([]byte prefix %q) = %v, want %v", tt.prefix, got, tt.want)
			}
		}
	}
}

// TestBrandRangesDisjoint proves that no four-digit prefix falls into two
// ranges, so the table's order cannot change an answer.
func TestBrandRangesDisjoint(t *testing.T) {
	for v := 0; v < 10000; v++ {
		s := fmt.Sprintf("%04d", v)
		var hits []Brand
		for _, r := range brandRanges {
			p := 0
			fmt.Sscanf(s[:r.width], "%d", &p)
			if p >= r.lo && p <= r.hi {
				hits = append(hits, r.brand)
			}
		}
		if len(hits) > 1 {
			t.Fatalf("prefix %s matches %d ranges: %v", s, len(hits), hits)
		}
		want := BrandUnknown
		if len(hits) == 1 {
			want = hits[0]
		}
		if got := DetectBrand(s); got != want {
			t.Fatalf("DetectBrand(%s) = %v, table says %v", s, got, want)
		}
	}
}

func TestBrandString(t *testing.T) {
	want := map[Brand]string{
		BrandUnknown: "unknown", BrandVisa: "visa", BrandMastercard: "mastercard",
		BrandAmex: "amex", BrandDiscover: "discover", BrandJCB: "jcb", BrandDiners: "diners",
		BrandUnionPay: "unionpay", BrandMaestro: "maestro", BrandMir: "mir", Brand(200): "unknown",
	}
	for b, s := range want {
		if b.String() != s {
			t.Errorf("Brand(%d).String() = %q, want %q", b, b.String(), s)
		}
	}
	all := Brands()
	if len(all) != 9 || all[0] != BrandVisa || all[8] != BrandMir {
		t.Errorf("Brands() = %v", all)
	}
}
