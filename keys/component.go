package keys

import (
	"fmt"
)

// ComponentSize is the length of a master-key component: AES-256.
const ComponentSize = 32

// MinComponents and MaxComponents bound how many custodian components make
// up a master key.
const (
	MinComponents = 2
	MaxComponents = 16
)

// Component is one custodian's share of the master key: 32 bytes and their
// KCV. The master key is the XOR of all components, so no fewer than all of
// them reveal anything about it.
//
// A Component prints (with any fmt verb) as its KCV only. Its bytes are
// reachable only through Bytes, for the ceremony tool to hand to its
// custodian. Zero overwrites them; LoadMasterKey zeroes the components it is
// given. Zeroing reaches this Go buffer only: copies the PKCS#11 binding made
// in C memory (when the component was generated or its KCV computed) are
// freed without being overwritten (see Residual risk in the package doc).
// A Component is not safe for concurrent use.
type Component struct {
	value []byte
	kcv   KCV
}

// NewComponent wraps a custodian's component. It takes ownership of value
// (no copy is made, so zeroing the Component zeroes the caller's buffer).
func NewComponent(value []byte, kcv KCV) (*Component, error) {
	if len(value) != ComponentSize {
		return nil, fmt.Errorf("%w: component must be %d bytes", ErrInvalidInput, ComponentSize)
	}
	return &Component{value: value, kcv: kcv}, nil
}

// KCV returns the component's key check value as recorded when it was made.
func (c *Component) KCV() KCV { return c.kcv }

// Bytes returns the component's bytes (not a copy). Handle with care.
func (c *Component) Bytes() []byte { return c.value }

// Zero overwrites the component's bytes in Go memory (not the binding's C
// copies; see the package doc).
func (c *Component) Zero() {
	if c != nil {
		zero(c.value)
	}
}

// String shows the KCV only.
func (c *Component) String() string { return "keys.Component{KCV:" + c.kcv.String() + "}" }

// GoString shows the KCV only.
func (c *Component) GoString() string { return c.String() }

// Format makes every fmt verb (%x included) print String.
func (c *Component) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// ComponentSet is the output of a component generation ceremony: the
// components, each for one custodian, and the KCV of the master key they
// combine into, to be recorded and checked when the key is loaded.
// Like Component, it is not safe for concurrent use.
type ComponentSet struct {
	Components []*Component
	MasterKCV  KCV
}

// Zero zeroes every component.
func (s *ComponentSet) Zero() {
	for _, c := range s.Components {
		c.Zero()
	}
}
