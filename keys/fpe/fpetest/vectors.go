package fpetest

// Vector is one FF1 sample of NIST SP 800-38G (the "FF1 samples" examples
// document published with it). Key and Tweak are hex, the texts are strings
// over fpe.Alphabet. It is a plain value, safe to share read-only.
type Vector struct {
	Name       string
	Key        string
	Radix      int
	Tweak      string
	Plaintext  string
	Ciphertext string
}

const (
	key128 = "2B7E151628AED2A6ABF7158809CF4F3C"
	key192 = "2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F"
	key256 = "2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F7F036D6F04FC6A94"
	tweak2 = "39383736353433323130"
	tweak3 = "3737373770717273373737"
	pt10   = "0123456789"
	pt36   = "0123456789abcdefghi"
)

// Vectors returns the nine FF1 samples: 1-3 AES-128, 4-6 AES-192, 7-9
// AES-256; in each triple no tweak (radix 10), a 10-byte tweak (radix 10),
// an 11-byte tweak (radix 36).
func Vectors() []Vector {
	return []Vector{
		{"sample1", key128, 10, "", pt10, "2433477484"},
		{"sample2", key128, 10, tweak2, pt10, "6124200773"},
		{"sample3", key128, 36, tweak3, pt36, "a9tv40mll9kdu509eum"},
		{"sample4", key192, 10, "", pt10, "2830668132"},
		{"sample5", key192, 10, tweak2, pt10, "2496655549"},
		{"sample6", key192, 36, tweak3, pt36, "xbj3kv35jrawxv32ysr"},
		{"sample7", key256, 10, "", pt10, "6657667009"},
		{"sample8", key256, 10, tweak2, pt10, "1001623463"},
		{"sample9", key256, 36, tweak3, pt36, "xs8a0azh2avyalyzuwd"},
	}
}
