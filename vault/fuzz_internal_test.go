package vault

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/panvault/panvault/vault/vaultpb"
)

// FuzzDecodeRecord: replicated values come from other nodes and from disk;
// decoding arbitrary bytes must fail cleanly, never panic, and a value that
// decodes must re-encode to a value that decodes to the same record.
func FuzzDecodeRecord(f *testing.F) {
	for _, m := range []proto.Message{
		&vaultpb.TokenRecord{KeyVersion: 1, Sealed: []byte("0123456789abcdef0123456789abcdef0123"), CreateUnixNanos: 1, ExpireUnixNanos: 2, Fingerprint: []byte("fp"), IdemKey: []byte("ik")},
		&vaultpb.KeyRecord{Name: "k", KeyType: 1, Purpose: 1, LatestVersion: 1, MinDecryptionVersion: 1,
			Versions: []*vaultpb.KeyVersionRecord{{Version: 1, State: 1, Wrapped: []byte{1, 2, 3}}}},
		&vaultpb.IdemRecord{Reply: &vaultpb.IdemRecord_Tokenize{Tokenize: &vaultpb.TokenizeReply{Token: "4111110000001112", KeyVersion: 1, Created: true}}},
		&vaultpb.SchemeRecord{Name: "pan", Mode: 1, KeepLeading: 6, KeepTrailing: 4, LuhnRule: 1, Key: "k", AllowedLengths: []uint32{16}},
	} {
		b, err := encodeRecord(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{recordFormat})
	f.Add([]byte{recordFormat, 8, 1, 18, 3, 1, 2, 3})
	f.Add([]byte{2, 8, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, dec := range []func([]byte) (string, error){
			func(b []byte) (string, error) { r, err := decodeToken(b); return r.String(), err },
			func(b []byte) (string, error) { r, err := decodeKey(b); return r.String(), err },
			func(b []byte) (string, error) { r, err := decodeIdem(b); return r.String(), err },
			func(b []byte) (string, error) { r, err := decodeScheme(b); return r.String(), err },
		} {
			_, _ = dec(b)
		}
		if r, err := decodeToken(b); err == nil {
			again, err := encodeRecord(r)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			r2, err := decodeToken(again)
			if err != nil || r2.GetKeyVersion() != r.GetKeyVersion() || string(r2.GetSealed()) != string(r.GetSealed()) {
				t.Fatalf("round trip changed the record")
			}
		}
	})
}

// FuzzMaskToken: the log form of any string shows at most ten of its
// characters, and only for 12-19 ASCII digits.
func FuzzMaskToken(f *testing.F) {
	f.Add("4111111111111111")
	f.Add("4111 1111 1111 1111")
	f.Add("")
	f.Add("٤١١١١١١١١١١١١١١١")
	f.Fuzz(func(t *testing.T, s string) {
		m := maskToken(s)
		shown := 0
		for i := 0; i < len(m); i++ {
			if m[i] >= '0' && m[i] <= '9' {
				shown++
			}
		}
		if strings.HasPrefix(m, "[len ") {
			return
		}
		if shown > 10 || len(m) != len(s) {
			t.Fatalf("mask shows %d digits of a %d-byte input", shown, len(s))
		}
	})
}
