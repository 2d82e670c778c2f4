//! The field codecs that the message declarations name, so that each message
//! declares its fields once and its encoder, decoder and `Debug` follow from them.
//!
//! A field is declared as `name: Type = kind`, where `kind` is one of:
//!
//! | kind               | Rust type    | on the wire                                 |
//! |--------------------|--------------|---------------------------------------------|
//! | `str(max, label)`  | `String`     | `u16` length, UTF-8, at most `max` bytes    |
//! | `secret(max, label)` | `String`   | as `str`; never shown by `Debug`            |
//! | `u8` `u16` `u32` `u64` `i64` | integers | big-endian                             |
//! | `u8_or(default)`   | `u8`         | one byte, or `default` when the message ends before it (a field added last) |
//! | `bool(label)`      | `bool`       | one byte, 0 or 1                            |
//! | `rights`           | `Rights`     | one byte, no unknown bits                   |
//! | `code`             | `ErrorCode`  | `u16`                                       |
//! | `sha256`           | `[u8; 32]`   | 32 bytes                                    |
//! | `bytes`            | `[u8; N]`    | N bytes                                     |
//! | `list`             | `Vec<T>`     | `u16` count, then each `T` (a [`Wire`] type) |
//! | `nested`           | `T`          | `T`'s own fields (a [`Wire`] type)          |
//!
//! `label` names the field in errors ("path is longer than its limit").

use crate::codec::{put_u16, DecodeError, EncodeError, Reader};

/// A composite value with its own encoding, for the `list` and `nested` kinds.
pub(crate) trait Wire: Sized {
    /// Appends the value's fields.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError>;
    /// Reads the value's fields.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Writes a `u16`-counted list.
pub(crate) fn put_list<T: Wire>(out: &mut Vec<u8>, items: &[T]) -> Result<(), EncodeError> {
    let count = u16::try_from(items.len()).map_err(|_| EncodeError::TooLong("entries"))?;
    put_u16(out, count);
    items.iter().try_for_each(|item| item.encode(out))
}

/// Reads a `u16`-counted list.
pub(crate) fn get_list<T: Wire>(r: &mut Reader<'_>) -> Result<Vec<T>, DecodeError> {
    let count = r.u16()?;
    // No pre-allocation from the peer's count: each item must actually be there,
    // so memory grows only with real bytes.
    let mut items = Vec::new();
    for _ in 0..count {
        items.push(T::decode(r)?);
    }
    Ok(items)
}

/// One field's encoder, decoder or `Debug` line, by codec kind.
macro_rules! wire_field {
    (@put $out:ident, $v:ident, str($max:expr, $label:expr)) => {
        $crate::codec::put_string($out, $v, $max, $label)?
    };
    (@put $out:ident, $v:ident, secret($max:expr, $label:expr)) => {
        $crate::codec::put_string($out, $v, $max, $label)?
    };
    (@put $out:ident, $v:ident, u8) => {
        $crate::codec::put_u8($out, *$v)
    };
    (@put $out:ident, $v:ident, u8_or($default:expr)) => {
        $crate::codec::put_u8($out, *$v)
    };
    (@put $out:ident, $v:ident, bytes) => {
        $out.extend_from_slice($v)
    };
    (@put $out:ident, $v:ident, u16) => {
        $crate::codec::put_u16($out, *$v)
    };
    (@put $out:ident, $v:ident, u32) => {
        $crate::codec::put_u32($out, *$v)
    };
    (@put $out:ident, $v:ident, u64) => {
        $crate::codec::put_u64($out, *$v)
    };
    (@put $out:ident, $v:ident, i64) => {
        $crate::codec::put_i64($out, *$v)
    };
    (@put $out:ident, $v:ident, bool($label:expr)) => {
        $crate::codec::put_bool($out, *$v)
    };
    (@put $out:ident, $v:ident, rights) => {
        $crate::codec::put_u8($out, $v.bits())
    };
    (@put $out:ident, $v:ident, code) => {
        $crate::codec::put_u16($out, $v.0)
    };
    (@put $out:ident, $v:ident, sha256) => {
        $out.extend_from_slice($v)
    };
    (@put $out:ident, $v:ident, list) => {
        $crate::control::wire::put_list($out, $v)?
    };
    (@put $out:ident, $v:ident, nested) => {
        $crate::control::wire::Wire::encode($v, $out)?
    };

    (@get $r:ident, str($max:expr, $label:expr)) => {
        $r.string($max, $label)?
    };
    (@get $r:ident, secret($max:expr, $label:expr)) => {
        $r.string($max, $label)?
    };
    (@get $r:ident, u8) => {
        $r.u8()?
    };
    (@get $r:ident, u8_or($default:expr)) => {
        if $r.remaining() == 0 {
            $default
        } else {
            $r.u8()?
        }
    };
    (@get $r:ident, bytes) => {
        $r.array()?
    };
    (@get $r:ident, u16) => {
        $r.u16()?
    };
    (@get $r:ident, u32) => {
        $r.u32()?
    };
    (@get $r:ident, u64) => {
        $r.u64()?
    };
    (@get $r:ident, i64) => {
        $r.i64()?
    };
    (@get $r:ident, bool($label:expr)) => {
        $r.bool($label)?
    };
    (@get $r:ident, rights) => {
        $crate::control::Rights::from_bits($r.u8()?)
            .ok_or($crate::codec::DecodeError::InvalidValue("rights"))?
    };
    (@get $r:ident, code) => {
        $crate::control::ErrorCode($r.u16()?)
    };
    (@get $r:ident, sha256) => {
        $r.array()?
    };
    (@get $r:ident, list) => {
        $crate::control::wire::get_list($r)?
    };
    (@get $r:ident, nested) => {
        $crate::control::wire::Wire::decode($r)?
    };

    // `Debug`: a secret is left out, and the caller ends with `..` to say so.
    (@debug $d:ident, $redacted:ident, $v:ident, secret($($arg:tt)*)) => {
        $redacted = true
    };
    (@debug $d:ident, $redacted:ident, $v:ident, $($kind:tt)*) => {
        $d.field(stringify!($v), $v)
    };
}
pub(crate) use wire_field;

/// Declares a message enum whose variants each carry a wire type byte and their
/// fields with codec kinds, and derives from that one list the enum, its `Debug`
/// (secrets left out), `type_byte`, `encode_fields` and `decode_fields`.
///
/// A variant is `Name = type_byte` followed by nothing (a unit variant),
/// `{ field: Type = kind, ... }`, or `(Type = kind)` (one unnamed field), then a
/// comma. Fields go on the wire in the order declared. A type byte used twice is
/// an unreachable-pattern error under `-D warnings`.
macro_rules! wire_enum {
    (
        $(#[$emeta:meta])*
        pub enum $name:ident {
            $(
                $(#[$meta:meta])*
                $variant:ident = $ty:literal
                $({
                    $(
                        $(#[$fmeta:meta])*
                        $field:ident : $fty:ty = $kind:ident $(($($karg:expr),*))?
                    ),* $(,)?
                })?
                $(($tty:ty = $tkind:ident))?
                ,
            )*
        }
    ) => {
        $(#[$emeta])*
        pub enum $name {
            $(
                $(#[$meta])*
                $variant $({ $($(#[$fmeta])* $field: $fty),* })? $(($tty))?,
            )*
        }

        impl ::std::fmt::Debug for $name {
            /// Like a derived `Debug`, except that secrets (passwords) are never
            /// shown: messages end up in logs.
            #[allow(unused_variables, unused_mut, unused_assignments, unreachable_code)]
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self {
                    $(
                        Self::$variant $({ $($field),* })? $((wire_enum!(@bind value $tty)))? => {
                            $(return wire_enum!(@debug_tuple f, $variant, value, $tty);)?
                            let mut d = f.debug_struct(stringify!($variant));
                            let mut redacted = false;
                            $($(
                                $crate::control::wire::wire_field!(
                                    @debug d, redacted, $field, $kind $(($($karg),*))?
                                );
                            )*)?
                            if redacted {
                                d.finish_non_exhaustive()
                            } else {
                                d.finish()
                            }
                        }
                    )*
                }
            }
        }

        impl $name {
            /// The message type byte.
            pub(crate) fn type_byte(&self) -> u8 {
                match self {
                    $(Self::$variant { .. } => $ty,)*
                }
            }

            /// Writes the fields after the type byte and request id.
            pub(crate) fn encode_fields(
                &self,
                out: &mut Vec<u8>,
            ) -> Result<(), $crate::codec::EncodeError> {
                match self {
                    $(
                        Self::$variant $({ $($field),* })? $((wire_enum!(@bind value $tty)))? => {
                            $($($crate::control::wire::wire_field!(
                                @put out, $field, $kind $(($($karg),*))?
                            );)*)?
                            $($crate::control::wire::wire_field!(@put out, value, $tkind);)?
                        }
                    )*
                }
                Ok(())
            }

            /// Reads the fields of the message with type byte `ty`; `None` if `ty`
            /// names no variant of this enum.
            pub(crate) fn decode_fields(
                ty: u8,
                r: &mut $crate::codec::Reader<'_>,
            ) -> Option<Result<Self, $crate::codec::DecodeError>> {
                // Struct fields are evaluated in the order written, which is the
                // order declared, which is the wire order.
                let decode = |r: &mut $crate::codec::Reader<'_>| {
                    Ok(match ty {
                        $(
                            $ty => Self::$variant
                                $({ $($field: $crate::control::wire::wire_field!(
                                    @get r, $kind $(($($karg),*))?
                                )),* })?
                                $(($crate::control::wire::wire_field!(@get r, $tkind)))?,
                        )*
                        other => return Err($crate::codec::DecodeError::UnknownType(other)),
                    })
                };
                match decode(r) {
                    Err($crate::codec::DecodeError::UnknownType(_)) => None,
                    other => Some(other),
                }
            }
        }
    };
    (@bind $v:ident $t:ty) => {
        $v
    };
    // A one-field tuple variant prints as a derived `Debug` would.
    (@debug_tuple $f:ident, $variant:ident, $v:ident, $t:ty) => {
        $f.debug_tuple(stringify!($variant)).field($v).finish()
    };
}
pub(crate) use wire_enum;
