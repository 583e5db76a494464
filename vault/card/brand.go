package card

// Brand is a card network identified from a PAN's issuer identification number
// (IIN) prefix. The zero value is BrandUnknown. Brands are plain values, safe for
// concurrent use.
//
// Prefix ranges (inclusive, compared on the first 1 to 4 digits):
//
//	Visa        4
//	Mastercard  51-55, 2221-2720
//	Amex        34, 37
//	Discover    6011, 644-649, 65
//	JCB         3528-3589
//	Diners      300-305, 36, 38
//	UnionPay    62 (all of it: co-badged 622126-622925 is reported as UnionPay)
//	Maestro     50, 56-58, 6304, 67 (covers 5018, 5020, 5038, 5893, 6304, 6759, 6761-6763)
//	Mir         2200-2204
//
// Anything else is BrandUnknown, which ISO/IEC 7812 permits (private and
// national ranges), so validation does not refuse it.
type Brand uint8

// Brands, in a fixed order; the numbers are not persisted anywhere.
const (
	BrandUnknown Brand = iota
	BrandVisa
	BrandMastercard
	BrandAmex
	BrandDiscover
	BrandJCB
	BrandDiners
	BrandUnionPay
	BrandMaestro
	BrandMir
)

var brandNames = [...]string{
	BrandUnknown:    "unknown",
	BrandVisa:       "visa",
	BrandMastercard: "mastercard",
	BrandAmex:       "amex",
	BrandDiscover:   "discover",
	BrandJCB:        "jcb",
	BrandDiners:     "diners",
	BrandUnionPay:   "unionpay",
	BrandMaestro:    "maestro",
	BrandMir:        "mir",
}

// String returns the brand's lower-case identifier, e.g. "mastercard".
func (b Brand) String() string {
	if int(b) < len(brandNames) {
		return brandNames[b]
	}
	return "unknown"
}

// Brands returns every known brand (without BrandUnknown), in declaration order.
func Brands() []Brand {
	out := make([]Brand, 0, len(brandNames)-1)
	for b := BrandVisa; int(b) < len(brandNames); b++ {
		out = append(out, b)
	}
	return out
}

// brandRange is a range of IIN prefixes of one width (number of digits).
type brandRange struct {
	width  int
	lo, hi int
	brand  Brand
}

// brandRanges is the table documented on Brand. No two ranges overlap (a test
// checks it), so the first match is the only match.
var brandRanges = []brandRange{
	{1, 4, 4, BrandVisa},
	{2, 51, 55, BrandMastercard},
	{4, 2221, 2720, BrandMastercard},
	{2, 34, 34, BrandAmex},
	{2, 37, 37, BrandAmex},
	{4, 6011, 6011, BrandDiscover},
	{3, 644, 649, BrandDiscover},
	{2, 65, 65, BrandDiscover},
	{4, 3528, 3589, BrandJCB},
	{3, 300, 305, BrandDiners},
	{2, 36, 36, BrandDiners},
	{2, 38, 38, BrandDiners},
	{2, 62, 62, BrandUnionPay},
	{2, 50, 50, BrandMaestro},
	{2, 56, 58, BrandMaestro},
	{4, 6304, 6304, BrandMaestro},
	{2, 67, 67, BrandMaestro},
	{4, 2200, 2204, BrandMir},
}

// DetectBrand returns the brand whose IIN range contains the leading digits of
// digits (ASCII), or BrandUnknown. It looks at prefixes only, not at the length
// or the Luhn check.
func DetectBrand[T ~string | ~[]byte](digits T) Brand {
	var prefix [5]int // prefix[w] = value of the first w digits
	n := 0
	for n < 4 && n < len(digits) {
		c := digits[n]
		if c < '0' || c > '9' {
			break
		}
		prefix[n+1] = prefix[n]*10 + int(c-'0')
		n++
	}
	for _, r := range brandRanges {
		if r.width <= n && prefix[r.width] >= r.lo && prefix[r.width] <= r.hi {
			return r.brand
		}
	}
	return BrandUnknown
}
