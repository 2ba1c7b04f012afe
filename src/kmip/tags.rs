//! The KMIP 1.x tags and enumerations this client speaks (values from the KMIP 1.2/1.4
//! specification, section 9.1.3 "Defined Values"; cross-checked against PyKMIP's `enums.py`).
//!
//! Only what the client sends or reads is defined; an unknown tag still decodes (the codec
//! keeps its number) and an unknown enumeration value is reported with its number.

use std::fmt;

/// A TTLV tag: three bytes on the wire, `0x42xxxx` for the tags the specification defines.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag(pub u32);

/// Defines the tag constants and their names in one table.
macro_rules! tags {
    ($($constant:ident = $value:literal, $text:literal;)*) => {
        impl Tag {
            $(
                #[doc = concat!("Tag `", stringify!($value), "`: ", $text, ".")]
                pub const $constant: Tag = Tag($value);
            )*

            /// The specification's name of this tag, if the client knows it.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

tags! {
    ASYNCHRONOUS_CORRELATION_VALUE = 0x42_0006, "Asynchronous Correlation Value";
    ASYNCHRONOUS_INDICATOR = 0x42_0007, "Asynchronous Indicator";
    ATTRIBUTE = 0x42_0008, "Attribute";
    ATTRIBUTE_INDEX = 0x42_0009, "Attribute Index";
    ATTRIBUTE_NAME = 0x42_000A, "Attribute Name";
    ATTRIBUTE_VALUE = 0x42_000B, "Attribute Value";
    AUTHENTICATION = 0x42_000C, "Authentication";
    BATCH_COUNT = 0x42_000D, "Batch Count";
    BATCH_ERROR_CONTINUATION_OPTION = 0x42_000E, "Batch Error Continuation Option";
    BATCH_ITEM = 0x42_000F, "Batch Item";
    BATCH_ORDER_OPTION = 0x42_0010, "Batch Order Option";
    COMPROMISE_OCCURRENCE_DATE = 0x42_0021, "Compromise Occurrence Date";
    CRYPTOGRAPHIC_USAGE_MASK = 0x42_002C, "Cryptographic Usage Mask";
    KEY_BLOCK = 0x42_0040, "Key Block";
    KEY_COMPRESSION_TYPE = 0x42_0041, "Key Compression Type";
    KEY_FORMAT_TYPE = 0x42_0042, "Key Format Type";
    KEY_MATERIAL = 0x42_0043, "Key Material";
    KEY_VALUE = 0x42_0045, "Key Value";
    KEY_WRAPPING_DATA = 0x42_0046, "Key Wrapping Data";
    MAXIMUM_ITEMS = 0x42_004F, "Maximum Items";
    MAXIMUM_RESPONSE_SIZE = 0x42_0050, "Maximum Response Size";
    MESSAGE_EXTENSION = 0x42_0051, "Message Extension";
    NAME = 0x42_0053, "Name";
    NAME_TYPE = 0x42_0054, "Name Type";
    NAME_VALUE = 0x42_0055, "Name Value";
    OBJECT_TYPE = 0x42_0057, "Object Type";
    OPERATION = 0x42_005C, "Operation";
    PROTOCOL_VERSION = 0x42_0069, "Protocol Version";
    PROTOCOL_VERSION_MAJOR = 0x42_006A, "Protocol Version Major";
    PROTOCOL_VERSION_MINOR = 0x42_006B, "Protocol Version Minor";
    QUERY_FUNCTION = 0x42_0074, "Query Function";
    REQUEST_HEADER = 0x42_0077, "Request Header";
    REQUEST_MESSAGE = 0x42_0078, "Request Message";
    REQUEST_PAYLOAD = 0x42_0079, "Request Payload";
    RESPONSE_HEADER = 0x42_007A, "Response Header";
    RESPONSE_MESSAGE = 0x42_007B, "Response Message";
    RESPONSE_PAYLOAD = 0x42_007C, "Response Payload";
    RESULT_MESSAGE = 0x42_007D, "Result Message";
    RESULT_REASON = 0x42_007E, "Result Reason";
    RESULT_STATUS = 0x42_007F, "Result Status";
    REVOCATION_MESSAGE = 0x42_0080, "Revocation Message";
    REVOCATION_REASON = 0x42_0081, "Revocation Reason";
    REVOCATION_REASON_CODE = 0x42_0082, "Revocation Reason Code";
    SECRET_DATA = 0x42_0085, "Secret Data";
    SECRET_DATA_TYPE = 0x42_0086, "Secret Data Type";
    SERVER_INFORMATION = 0x42_0088, "Server Information";
    STATE = 0x42_008D, "State";
    SYMMETRIC_KEY = 0x42_008F, "Symmetric Key";
    TEMPLATE_ATTRIBUTE = 0x42_0091, "Template-Attribute";
    TIME_STAMP = 0x42_0092, "Time Stamp";
    UNIQUE_BATCH_ITEM_ID = 0x42_0093, "Unique Batch Item ID";
    UNIQUE_IDENTIFIER = 0x42_0094, "Unique Identifier";
    VENDOR_IDENTIFICATION = 0x42_009D, "Vendor Identification";
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "tag {:06X}", self.0),
        }
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Tag({:06X} {name})", self.0),
            None => write!(f, "Tag({:06X})", self.0),
        }
    }
}

/// Attribute names (KMIP 1.x identifies attributes in a Template-Attribute or a Locate
/// request by these Text Strings).
pub mod attribute_name {
    /// The Name attribute: a structure of Name Value and Name Type.
    pub const NAME: &str = "Name";
    /// The Object Type attribute (an Enumeration).
    pub const OBJECT_TYPE: &str = "Object Type";
    /// The Cryptographic Usage Mask attribute (an Integer bit mask).
    pub const CRYPTOGRAPHIC_USAGE_MASK: &str = "Cryptographic Usage Mask";
    /// The State attribute (an Enumeration).
    pub const STATE: &str = "State";
}

/// Defines a KMIP enumeration: variants with their wire value and specification name.
macro_rules! kmip_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($variant:ident = $value:literal, $text:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                #[doc = concat!("`", stringify!($value), "`: ", $text, ".")]
                $variant,
            )*
        }

        impl $name {
            /// The value on the wire.
            pub const fn value(self) -> u32 {
                match self {
                    $(Self::$variant => $value,)*
                }
            }

            /// The variant with this wire value, if it is one the client knows.
            pub const fn from_value(value: u32) -> Option<Self> {
                match value {
                    $($value => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The specification's name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kmip_enum! {
    /// Operation (KMIP 1.0 to 1.4).
    pub enum Operation {
        Create = 0x01, "Create";
        CreateKeyPair = 0x02, "Create Key Pair";
        Register = 0x03, "Register";
        ReKey = 0x04, "Re-key";
        DeriveKey = 0x05, "Derive Key";
        Certify = 0x06, "Certify";
        ReCertify = 0x07, "Re-certify";
        Locate = 0x08, "Locate";
        Check = 0x09, "Check";
        Get = 0x0A, "Get";
        GetAttributes = 0x0B, "Get Attributes";
        GetAttributeList = 0x0C, "Get Attribute List";
        AddAttribute = 0x0D, "Add Attribute";
        ModifyAttribute = 0x0E, "Modify Attribute";
        DeleteAttribute = 0x0F, "Delete Attribute";
        ObtainLease = 0x10, "Obtain Lease";
        GetUsageAllocation = 0x11, "Get Usage Allocation";
        Activate = 0x12, "Activate";
        Revoke = 0x13, "Revoke";
        Destroy = 0x14, "Destroy";
        Archive = 0x15, "Archive";
        Recover = 0x16, "Recover";
        Validate = 0x17, "Validate";
        Query = 0x18, "Query";
        Cancel = 0x19, "Cancel";
        Poll = 0x1A, "Poll";
        Notify = 0x1B, "Notify";
        Put = 0x1C, "Put";
        ReKeyKeyPair = 0x1D, "Re-key Key Pair";
        DiscoverVersions = 0x1E, "Discover Versions";
        Encrypt = 0x1F, "Encrypt";
        Decrypt = 0x20, "Decrypt";
        Sign = 0x21, "Sign";
        SignatureVerify = 0x22, "Signature Verify";
        Mac = 0x23, "MAC";
        MacVerify = 0x24, "MAC Verify";
        RngRetrieve = 0x25, "RNG Retrieve";
        RngSeed = 0x26, "RNG Seed";
        Hash = 0x27, "Hash";
        CreateSplitKey = 0x28, "Create Split Key";
        JoinSplitKey = 0x29, "Join Split Key";
        Import = 0x2A, "Import";
        Export = 0x2B, "Export";
    }
}

kmip_enum! {
    /// Object Type (KMIP 1.x).
    pub enum ObjectType {
        Certificate = 0x01, "Certificate";
        SymmetricKey = 0x02, "Symmetric Key";
        PublicKey = 0x03, "Public Key";
        PrivateKey = 0x04, "Private Key";
        SplitKey = 0x05, "Split Key";
        Template = 0x06, "Template";
        SecretData = 0x07, "Secret Data";
        OpaqueObject = 0x08, "Opaque Object";
        PgpKey = 0x09, "PGP Key";
    }
}

kmip_enum! {
    /// Secret Data Type.
    pub enum SecretDataType {
        Password = 0x01, "Password";
        Seed = 0x02, "Seed";
    }
}

kmip_enum! {
    /// Key Format Type (the ones a Secret Data key block may carry).
    pub enum KeyFormatType {
        Raw = 0x01, "Raw";
        Opaque = 0x02, "Opaque";
    }
}

kmip_enum! {
    /// Name Type of a Name attribute.
    pub enum NameType {
        UninterpretedTextString = 0x01, "Uninterpreted Text String";
        Uri = 0x02, "URI";
    }
}

kmip_enum! {
    /// Result Status of a response batch item.
    pub enum ResultStatus {
        Success = 0x00, "Success";
        OperationFailed = 0x01, "Operation Failed";
        OperationPending = 0x02, "Operation Pending";
        OperationUndone = 0x03, "Operation Undone";
    }
}

kmip_enum! {
    /// Result Reason of a failed operation (every reason KMIP 1.0 to 1.4 defines).
    pub enum ResultReason {
        ItemNotFound = 0x01, "Item Not Found";
        ResponseTooLarge = 0x02, "Response Too Large";
        AuthenticationNotSuccessful = 0x03, "Authentication Not Successful";
        InvalidMessage = 0x04, "Invalid Message";
        OperationNotSupported = 0x05, "Operation Not Supported";
        MissingData = 0x06, "Missing Data";
        InvalidField = 0x07, "Invalid Field";
        FeatureNotSupported = 0x08, "Feature Not Supported";
        OperationCanceledByRequester = 0x09, "Operation Canceled By Requester";
        CryptographicFailure = 0x0A, "Cryptographic Failure";
        IllegalOperation = 0x0B, "Illegal Operation";
        PermissionDenied = 0x0C, "Permission Denied";
        ObjectArchived = 0x0D, "Object Archived";
        IndexOutOfBounds = 0x0E, "Index Out of Bounds";
        ApplicationNamespaceNotSupported = 0x0F, "Application Namespace Not Supported";
        KeyFormatTypeNotSupported = 0x10, "Key Format Type Not Supported";
        KeyCompressionTypeNotSupported = 0x11, "Key Compression Type Not Supported";
        EncodingOptionError = 0x12, "Encoding Option Error";
        KeyValueNotPresent = 0x13, "Key Value Not Present";
        AttestationRequired = 0x14, "Attestation Required";
        AttestationFailed = 0x15, "Attestation Failed";
        Sensitive = 0x16, "Sensitive";
        NotExtractable = 0x17, "Not Extractable";
        ObjectAlreadyExists = 0x18, "Object Already Exists";
        GeneralFailure = 0x100, "General Failure";
    }
}

impl ResultReason {
    /// What the reason means, in words an operator can act on.
    pub const fn message(self) -> &'static str {
        match self {
            Self::ItemNotFound => "no object matches the request on the server",
            Self::ResponseTooLarge => "the response would exceed the allowed response size",
            Self::AuthenticationNotSuccessful => {
                "the server did not accept the client's identity (check the client certificate)"
            }
            Self::InvalidMessage => "the server could not parse the request",
            Self::OperationNotSupported => "the server does not support this operation",
            Self::MissingData => "the request lacks data the server requires",
            Self::InvalidField => "a field of the request has a value the server rejects",
            Self::FeatureNotSupported => "the request uses a feature the server does not support",
            Self::OperationCanceledByRequester => "the operation was canceled by the client",
            Self::CryptographicFailure => "a cryptographic operation failed on the server",
            Self::IllegalOperation => {
                "the operation is not allowed on the object in its current state"
            }
            Self::PermissionDenied => "the client may not perform this operation on the object",
            Self::ObjectArchived => "the object is archived and must be recovered first",
            Self::IndexOutOfBounds => "an attribute index is out of range",
            Self::ApplicationNamespaceNotSupported => {
                "the server does not support the application namespace"
            }
            Self::KeyFormatTypeNotSupported => {
                "the server cannot return the object in the requested key format"
            }
            Self::KeyCompressionTypeNotSupported => {
                "the server cannot return the object with the requested key compression"
            }
            Self::EncodingOptionError => "the requested encoding option is not supported",
            Self::KeyValueNotPresent => "the server holds no key value for the object",
            Self::AttestationRequired => "the server requires attestation data",
            Self::AttestationFailed => "the server did not accept the attestation data",
            Self::Sensitive => "the object is sensitive and cannot be returned in the clear",
            Self::NotExtractable => "the object may not leave the server",
            Self::ObjectAlreadyExists => "an object with this identity already exists",
            Self::GeneralFailure => "the server failed for a reason it did not specify",
        }
    }
}

kmip_enum! {
    /// Revocation Reason Code of a Revoke request.
    pub enum RevocationReasonCode {
        Unspecified = 0x01, "Unspecified";
        KeyCompromise = 0x02, "Key Compromise";
        CaCompromise = 0x03, "CA Compromise";
        AffiliationChanged = 0x04, "Affiliation Changed";
        Superseded = 0x05, "Superseded";
        CessationOfOperation = 0x06, "Cessation of Operation";
        PrivilegeWithdrawn = 0x07, "Privilege Withdrawn";
    }
}

kmip_enum! {
    /// State of a managed object.
    pub enum State {
        PreActive = 0x01, "Pre-Active";
        Active = 0x02, "Active";
        Deactivated = 0x03, "Deactivated";
        Compromised = 0x04, "Compromised";
        Destroyed = 0x05, "Destroyed";
        DestroyedCompromised = 0x06, "Destroyed Compromised";
    }
}

kmip_enum! {
    /// Query Function of a Query request (KMIP 1.0/1.1 functions).
    pub enum QueryFunction {
        QueryOperations = 0x01, "Query Operations";
        QueryObjects = 0x02, "Query Objects";
        QueryServerInformation = 0x03, "Query Server Information";
        QueryApplicationNamespaces = 0x04, "Query Application Namespaces";
        QueryExtensionList = 0x05, "Query Extension List";
        QueryExtensionMap = 0x06, "Query Extension Map";
    }
}

/// Bits of the Cryptographic Usage Mask attribute (an Integer, not an Enumeration).
pub mod usage_mask {
    /// Sign.
    pub const SIGN: i32 = 0x0000_0001;
    /// Verify: what PyKMIP's own Secret Data example registers, and the bit keysmith sets
    /// on authentication passphrases (they are used to verify a peer, never to encrypt).
    pub const VERIFY: i32 = 0x0000_0002;
    /// Encrypt.
    pub const ENCRYPT: i32 = 0x0000_0004;
    /// Decrypt.
    pub const DECRYPT: i32 = 0x0000_0008;
    /// Export.
    pub const EXPORT: i32 = 0x0000_0040;
}
