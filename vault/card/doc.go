// Package card validates, classifies and masks primary account numbers (PANs).
//
// It is pure code: no I/O, no logging, no global state. It exists so that every
// path that accepts a card number (tokenize requests, batch imports, the CLI)
// applies exactly the same rules, and so that the rules can be fuzzed on their own.
//
// # Rules (ISO/IEC 7812)
//
// [Parse] accepts a PAN only if it is 12 to 19 ASCII digits ('0'-'9'; Unicode
// digits such as Arabic-Indic or fullwidth forms, spaces and dashes are refused)
// and passes the Luhn check. UnionPay cards (IIN 62) that fail the Luhn check
// exist; they are accepted only when [ParseOptions.AllowNonLuhnUnionPay] is set,
// which a token scheme does only if it can carry such cards.
//
// # Errors
//
// Every rejection is a *[RuleError] naming the field, the rule that failed
// (a stable machine-readable name) and a description, and wrapping one of the
// sentinel errors ([ErrEmpty], [ErrNotDigits], [ErrLength], [ErrLuhn]) so that
// callers can use errors.Is and the gRPC edge can build field violations. No
// error ever contains the input or any part of it.
//
// # Keeping PANs out of logs
//
// A [PAN] formats itself masked with every fmt verb and as a log/slog value, so
// passing one to a logger or an error by mistake prints at most the BIN and last
// four digits. The clear digits come out only through [PAN.Reveal] and
// [PAN.AppendDigits], whose names make the intent visible in review. One gap
// remains: fmt prints a PAN stored in an unexported struct field with %v by
// reflection (it cannot call methods on unexported fields), so do not print
// structs that hold PANs.
//
// # Masking (PCI DSS 3.4.1)
//
// [PAN.Masked] shows at most the BIN and the last four digits. The BIN is six
// digits unless the caller declares an eight-digit BIN ([MaskOptions]); eight
// leading digits are shown only for PANs of 16 digits or more. For PANs shorter
// than 15 digits fewer leading digits are shown so that at least five digits stay
// hidden: PCI DSS sets a maximum, and showing 10 of 12 digits (which with the
// Luhn check leaves ten candidates) would not conceal the PAN.
//
// # Brands
//
// [DetectBrand] classifies by IIN prefix only (not by length); the ranges are
// listed on [Brand]. The ranges do not overlap, so the order of the checks does
// not matter; a test enforces that.
package card
