//! The `interface!` declaration.

/// Declares an interface: its one-way messages and its rpcs.
///
/// ```
/// use atoll_iface::Bytes;
///
/// atoll_iface::interface! {
///     /// A key-value store.
///     pub interface Store {
///         /// One-way: the sender is going away.
///         Bye { core: u32 }
///         /// An rpc: a request, `->`, its reply.
///         Get { key: u64 } -> Value { found: bool, value: Bytes<100> }
///         Set { key: u64, value: Bytes<100> } -> Done {}
///     }
/// }
///
/// let get = Store::from(Get { key: 7 });
/// assert_eq!(atoll_iface::encode(&get, 1, 0).count(), 1);
/// ```
///
/// Each message becomes a struct of that name with `pub` fields (doc comments
/// before a field go on it) (deriving
/// `Debug, Clone, PartialEq, Eq`; attributes before a message, doc comments
/// or more derives, go on its struct), implementing [`Message`](crate::Message).
/// The interface becomes an enum with one variant per message, named and
/// holding it, in declaration order, which gives the kind ids: above, `Bye`
/// is 0, `Get` 1, `Value` 2, `Set` 3, `Done` 4. It implements
/// [`Interface`](crate::Interface) and `From` each message, and gives each
/// kind its [`Role`](crate::Role) (`Get` is a request answered by `Value`)
/// and its name.
///
/// Field types are those that implement [`Field`](crate::Field): `u8` to
/// `u128`, `i8` to `i128`, `bool`, `[u8; N]` and [`Bytes<MAX>`](crate::Bytes).
/// On the wire, the fields are packed in order, little-endian. A message
/// longer than [`MAX_MESSAGE_SIZE`](crate::MAX_MESSAGE_SIZE) does not compile.
#[macro_export]
macro_rules! interface {
    (
        $(#[$interface_attribute:meta])*
        $visibility:vis interface $interface:ident {
            $(
                $(#[$message_attribute:meta])*
                $message:ident { $($(#[$field_attribute:meta])* $field:ident : $field_type:ty),* $(,)? }
                $(
                    -> $(#[$reply_attribute:meta])*
                    $reply:ident { $($(#[$reply_field_attribute:meta])* $reply_field:ident : $reply_field_type:ty),* $(,)? }
                )?
            )*
        }
    ) => {
        // Requests, their replies and one-way messages, flattened into one
        // list in declaration order, each with its reply type and role.
        $crate::__interface! {
            $(#[$interface_attribute])* $visibility $interface
            messages {
                $(
                    $(#[$message_attribute])*
                    $message { $($(#[$field_attribute])* $field: $field_type),* }
                        role ($crate::__request_role!($($reply)?))
                        reply $crate::__reply_type!($($reply)?);
                    $(
                        $(#[$reply_attribute])*
                        $reply { $($(#[$reply_field_attribute])* $reply_field: $reply_field_type),* }
                            role ($crate::Role::Reply) reply ();
                    )?
                )*
            }
        }
    };
}

/// The reply type of a declared message: its reply, or `()` for none.
#[doc(hidden)]
#[macro_export]
macro_rules! __reply_type {
    () => {
        ()
    };
    ($reply:ident) => {
        $reply
    };
}

/// The role of a declared message: a request with its reply's kind, or a
/// one-way message.
#[doc(hidden)]
#[macro_export]
macro_rules! __request_role {
    () => {
        $crate::Role::OneWay
    };
    ($reply:ident) => {
        $crate::Role::Request {
            reply: <$reply as $crate::Message>::KIND,
        }
    };
}

/// The items of an interface, from the flattened declaration.
#[doc(hidden)]
#[macro_export]
macro_rules! __interface {
    (
        $(#[$interface_attribute:meta])* $visibility:vis $interface:ident
        messages {
            $(
                $(#[$message_attribute:meta])*
                $message:ident { $($(#[$field_attribute:meta])* $field:ident : $field_type:ty),* }
                    role ($role:expr) reply $reply:ty;
            )*
        }
    ) => {
        $(
            $(#[$message_attribute])*
            #[derive(Debug, Clone, PartialEq, Eq)]
            $visibility struct $message {
                $($(#[$field_attribute])* pub $field: $field_type,)*
            }
        )*

        $(#[$interface_attribute])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        $visibility enum $interface {
            $($message($message),)*
        }

        // In a block, so that the kind ids' enum takes no name at the call site.
        const _: () = {
            #[repr(u8)]
            enum InterfaceKind {
                $($message,)*
            }

            $(
                impl ::core::convert::From<$message> for $interface {
                    fn from(message: $message) -> Self {
                        $crate::Message::into_interface(message)
                    }
                }

                impl $crate::Message for $message {
                    type Interface = $interface;
                    type Reply = $reply;
                    const NAME: &'static str = ::core::stringify!($message);
                    const KIND: u8 = InterfaceKind::$message as u8;
                    const ROLE: $crate::Role = $role;
                    const WIRE_SIZE: usize =
                        0 $(+ ::core::mem::size_of::<<$field_type as $crate::Field>::Wire>())*;

                    fn into_interface(self) -> $interface {
                        $interface::$message(self)
                    }

                    fn from_interface(message: $interface) -> ::core::result::Result<Self, $interface> {
                        #[allow(unreachable_patterns, reason = "an interface of one message")]
                        match message {
                            $interface::$message(message) => ::core::result::Result::Ok(message),
                            other => ::core::result::Result::Err(other),
                        }
                    }

                    fn encode_fields(&self, out: &mut $crate::__private::Vec<u8>) {
                        $($crate::__private::write_field(&self.$field, out);)*
                    }

                    fn decode_fields(fields: &[u8]) -> ::core::result::Result<Self, $crate::DecodeError> {
                        #[allow(unused_mut, unused_variables, reason = "a message without fields")]
                        let mut reader = $crate::__private::FieldReader::new(Self::NAME, fields);
                        ::core::result::Result::Ok(Self { $($field: reader.read(::core::stringify!($field))?,)* })
                    }
                }

                const _: () = ::core::assert!(
                    <$message as $crate::Message>::WIRE_SIZE <= $crate::MAX_MESSAGE_SIZE,
                    ::core::concat!("message ", ::core::stringify!($message), " is longer than MAX_MESSAGE_SIZE"),
                );
            )*

            impl $crate::Interface for $interface {
                const KINDS: u8 = 0 $(+ { let _ = InterfaceKind::$message; 1 })*;

                fn kind(&self) -> u8 {
                    match self {
                        $(Self::$message(_) => <$message as $crate::Message>::KIND,)*
                    }
                }

                fn wire_size(kind: u8) -> ::core::option::Option<usize> {
                    $(
                        if kind == <$message as $crate::Message>::KIND {
                            return ::core::option::Option::Some(<$message as $crate::Message>::WIRE_SIZE);
                        }
                    )*
                    ::core::option::Option::None
                }

                fn role(kind: u8) -> ::core::option::Option<$crate::Role> {
                    $(
                        if kind == <$message as $crate::Message>::KIND {
                            return ::core::option::Option::Some(<$message as $crate::Message>::ROLE);
                        }
                    )*
                    ::core::option::Option::None
                }

                fn name(kind: u8) -> ::core::option::Option<&'static str> {
                    $(
                        if kind == <$message as $crate::Message>::KIND {
                            return ::core::option::Option::Some(<$message as $crate::Message>::NAME);
                        }
                    )*
                    ::core::option::Option::None
                }

                fn encode_fields(&self, out: &mut $crate::__private::Vec<u8>) {
                    match self {
                        $(Self::$message(message) => $crate::Message::encode_fields(message, out),)*
                    }
                }

                fn decode_fields(kind: u8, fields: &[u8]) -> ::core::result::Result<Self, $crate::DecodeError> {
                    $(
                        if kind == <$message as $crate::Message>::KIND {
                            return <$message as $crate::Message>::decode_fields(fields).map(Self::$message);
                        }
                    )*
                    ::core::result::Result::Err($crate::DecodeError::UnknownKind(kind))
                }
            }
        };
    };
}
