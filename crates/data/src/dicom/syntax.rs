//! DICOM transfer syntaxes: which feature of this crate decodes each, and what to tell a user
//! whose file is in one this build cannot read.

/// Explicit VR little endian.
pub(crate) const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
/// Implicit VR little endian (the default of data sets without a meta group).
pub(crate) const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR big endian (retired, still met).
pub(crate) const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
/// JPEG extended (processes 2 and 4): 8- or 12-bit lossy JPEG.
#[cfg(feature = "dicom")]
pub(crate) const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";

/// The value representations of the standard (PS3.5 6.2), to tell an explicit-VR element
/// header from an implicit one.
const VRS: [&[u8; 2]; 34] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB",
    b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
    b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
];

/// Whether two bytes are a value representation.
pub(crate) fn is_vr(b: &[u8]) -> bool {
    VRS.iter().any(|v| &v[..] == b)
}

/// The crate feature whose codec decodes the transfer syntax `uid`, when one does.
#[cfg(feature = "dicom")]
pub(crate) fn feature_for(uid: &str) -> Option<&'static str> {
    match uid {
        // JPEG-LS lossless, near-lossless
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => Some("dicom-jpegls"),
        // JPEG 2000 (lossless only, lossy; part 2 multi-component)
        "1.2.840.10008.1.2.4.90"
        | "1.2.840.10008.1.2.4.91"
        | "1.2.840.10008.1.2.4.92"
        | "1.2.840.10008.1.2.4.93" => Some("dicom-jpeg2000"),
        _ => None,
    }
}

/// What a user can do about a transfer syntax this build cannot decode.
#[cfg(feature = "dicom")]
pub(crate) fn remedy(uid: &str) -> String {
    match feature_for(uid) {
        Some(f) => format!(
            "build with the `{f}` feature (ganaug-data's, or the ganaug crate's: \
             `cargo build --release --features {f}`)"
        ),
        None => "no codec in ganaug reads it: convert the file to an uncompressed transfer \
                 syntax first (e.g. `gdcmconv --raw IN OUT`, or DCMTK's `dcmdjpeg`/`dcmdjp2k`)"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "dicom")]
    #[test]
    fn each_codec_family_names_its_feature_and_others_a_conversion() {
        assert_eq!(feature_for("1.2.840.10008.1.2.4.80"), Some("dicom-jpegls"));
        assert_eq!(
            feature_for("1.2.840.10008.1.2.4.90"),
            Some("dicom-jpeg2000")
        );
        assert_eq!(feature_for(JPEG_EXTENDED), None);
        assert!(remedy("1.2.840.10008.1.2.4.91").contains("`dicom-jpeg2000`"));
        assert!(remedy("1.2.840.10008.1.2.4.100").contains("gdcmconv --raw"));
    }

    #[test]
    fn value_representations_are_told_from_lengths() {
        assert!(is_vr(b"OW") && is_vr(b"UI") && !is_vr(b"II") && !is_vr(b"\x0a\x00"));
    }
}
