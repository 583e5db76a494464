package ceremony

import "slices"

// clone gives tests a deep copy of a State's vote slices.
func (st State) Clone() State {
	st.Approvals = slices.Clone(st.Approvals)
	st.Rejections = slices.Clone(st.Rejections)
	return st
}
