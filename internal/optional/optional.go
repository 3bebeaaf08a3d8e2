// Package optional converts between the generated types' optional fields (a pointer, nil
// when absent) and the plain values the domain and qrtest keep, where the zero value
// means absent.
package optional

// NonZero is a pointer to v, or nil when v is its type's zero value.
func NonZero[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return new(v)
}

// Value is *p, or the zero value when p is nil.
func Value[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
