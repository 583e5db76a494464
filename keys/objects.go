package keys

import (
	"encoding/binary"
	"fmt"

	"github.com/miekg/pkcs11"
)

// findOne returns the single object matching template, ErrAmbiguous if
// several match, or (0, false, nil) if none does.
func findOne(p p11, sh pkcs11.SessionHandle, template []*pkcs11.Attribute) (pkcs11.ObjectHandle, bool, error) {
	if err := p.FindObjectsInit(sh, template); err != nil {
		return 0, false, fmt.Errorf("find objects: %w", err)
	}
	objs, _, err := p.FindObjects(sh, 2)
	if ferr := p.FindObjectsFinal(sh); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return 0, false, fmt.Errorf("find objects: %w", err)
	}
	switch len(objs) {
	case 0:
		return 0, false, nil
	case 1:
		return objs[0], true, nil
	default:
		return 0, false, fmt.Errorf("%w: more than one object matches", ErrAmbiguous)
	}
}

// getAttrs reads the given (non-secret) attributes of an object.
func getAttrs(p p11, sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, types ...uint) (map[uint][]byte, error) {
	req := make([]*pkcs11.Attribute, len(types))
	for i, t := range types {
		req[i] = attr(t, nil)
	}
	got, err := p.GetAttributeValue(sh, o, req)
	if err != nil {
		return nil, fmt.Errorf("get attributes: %w", err)
	}
	out := make(map[uint][]byte, len(got))
	for _, a := range got {
		out[a.Type] = a.Value
	}
	return out, nil
}

// isTrue decodes a CK_BBOOL attribute value.
func isTrue(v []byte) bool { return len(v) == 1 && v[0] != 0 }

// ulong decodes a CK_ULONG attribute value (native byte order and size).
func ulong(v []byte) (uint64, bool) {
	switch len(v) {
	case 8:
		return binary.NativeEndian.Uint64(v), true
	case 4:
		return uint64(binary.NativeEndian.Uint32(v)), true
	}
	return 0, false
}
