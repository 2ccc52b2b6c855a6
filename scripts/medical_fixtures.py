#!/usr/bin/env python3
"""Writes the medical-format test fixtures that crates/data/tests/medical.rs reads back.

Usage: medical_fixtures.py OUT_DIR

Everything is made here, from arrays defined here (never from files of public collections):

- OUT_DIR/dicom/<name>.dcm: one 16x16 CT slice (stored values with a rescale to HU) in every
  transfer syntax a user meets (uncompressed explicit/implicit little endian, explicit big
  endian, deflated, RLE, JPEG baseline, JPEG extended 12-bit, JPEG lossless, JPEG-LS,
  JPEG 2000), plus the awkward cases: a TIFF header in the preamble, a raw data set without
  preamble or meta, YBR_FULL_422 colour, 32 bits allocated.
- OUT_DIR/series/: a 3-slice series written in shuffled file order (and a second series).
- OUT_DIR/nifti/volume.nii.gz: a volume stored in a non-identity orientation.
- OUT_DIR/expected.json: what a correct reader returns for each of them.

pydicom writes the DICOM files, imagecodecs encodes the compressed frames (libjpeg-turbo,
CharLS, OpenJPEG), nibabel writes the NIfTI volume and says which way its axes point.
"""

import json
import sys
from pathlib import Path

import imagecodecs
import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

SIDE = 16
SLOPE, INTERCEPT = 1.0, -1024.0


def ct_stored():
    """A 16x16 12-bit CT slice: a gradient from air to bone with a bright disc."""
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    hu = -1000.0 + 120.0 * x + 8.0 * y
    hu[(x - 10) ** 2 + (y - 6) ** 2 < 9] = 900.0
    return np.clip(np.round(hu - INTERCEPT), 0, 4095).astype(np.uint16)


def base(stored, syntax, bits=16, stored_bits=12, series=None, instance=1, z=0.0):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.PatientID = "P1"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = series or generate_uid()
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [0.0, 0.0, z]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.Rows, ds.Columns = stored.shape[:2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = stored_bits
    ds.HighBit = stored_bits - 1
    ds.PixelRepresentation = 0
    ds.RescaleSlope = SLOPE
    ds.RescaleIntercept = INTERCEPT
    return ds


def native(ds, stored, syntax):
    order = ">" if syntax == ExplicitVRBigEndian else "<"
    ds.PixelData = stored.astype(f"{order}u2").tobytes()
    ds.file_meta.TransferSyntaxUID = syntax
    return ds


def encapsulated(ds, frame, syntax):
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.set_original_encoding(False, True)
    return ds


def save(ds, path, **kw):
    ds.save_as(path, enforce_file_format=True, **kw)


def main(out: Path):
    dicom = out / "dicom"
    dicom.mkdir(parents=True, exist_ok=True)
    stored = ct_stored()
    hu = (stored.astype(np.float64) * SLOPE + INTERCEPT).tolist()
    expected = {"dicom": {}, "refused": {}}

    def lossless(name, ds):
        save(ds, dicom / f"{name}.dcm")
        expected["dicom"][name] = {"hu": hu, "tolerance": 0.0}

    lossless("explicit_le", native(base(stored, ExplicitVRLittleEndian), stored, ExplicitVRLittleEndian))
    lossless("implicit_le", native(base(stored, ImplicitVRLittleEndian), stored, ImplicitVRLittleEndian))
    lossless("explicit_be", native(base(stored, ExplicitVRBigEndian), stored, ExplicitVRBigEndian))
    lossless("deflated", native(base(stored, DeflatedExplicitVRLittleEndian), stored, DeflatedExplicitVRLittleEndian))
    rle = native(base(stored, ExplicitVRLittleEndian), stored, ExplicitVRLittleEndian)
    rle.compress(RLELossless, encoding_plugin="pydicom")
    lossless("rle", rle)
    lossless("jpeg_lossless", encapsulated(base(stored, JPEGLosslessSV1), imagecodecs.ljpeg_encode(stored, bitspersample=12), JPEGLosslessSV1))
    lossless("jpeg_ls", encapsulated(base(stored, JPEGLSLossless), imagecodecs.jpegls_encode(stored, level=0), JPEGLSLossless))
    lossless("jpeg2000", encapsulated(base(stored, JPEG2000Lossless), imagecodecs.jpeg2k_encode(stored, level=0, codecformat="j2k", reversible=True), JPEG2000Lossless))

    # lossy JPEG baseline: 8 bits stored (the gray levels of a windowed image)
    gray = (stored >> 4).astype(np.uint8)
    jb = base(gray, JPEGBaseline8Bit, bits=8, stored_bits=8)
    jb.RescaleSlope, jb.RescaleIntercept = 1.0, 0.0
    save(encapsulated(jb, imagecodecs.jpeg8_encode(gray, level=95), JPEGBaseline8Bit), dicom / "jpeg_baseline.dcm")
    expected["dicom"]["jpeg_baseline"] = {"hu": gray.astype(float).tolist(), "tolerance": 6.0}

    # 12-bit extended JPEG (process 4): read with the right feature, refused by name otherwise
    save(encapsulated(base(stored, JPEGExtended12Bit), imagecodecs.jpeg8_encode(stored, level=95, bitspersample=12), JPEGExtended12Bit), dicom / "jpeg_extended12.dcm")
    expected["refused"]["jpeg_extended12"] = "JPEG Extended"

    # a TIFF header in the 128-byte preamble (dual DICOM/TIFF files)
    tiff = native(base(stored, ExplicitVRLittleEndian), stored, ExplicitVRLittleEndian)
    tiff.preamble = b"II*\x00" + b"\x08\x00\x00\x00" + b"\x00" * 120
    lossless("tiff_preamble", tiff)

    # a raw data set: no preamble, no meta group (implicit VR little endian)
    raw = native(base(stored, ImplicitVRLittleEndian), stored, ImplicitVRLittleEndian)
    del raw.file_meta
    raw.save_as(dicom / "no_meta.dcm", enforce_file_format=False, implicit_vr=True, little_endian=True)
    expected["dicom"]["no_meta"] = {"hu": hu, "tolerance": 0.0}

    # 32 bits allocated (a CT slice some converters write), signed
    big = base(stored, ExplicitVRLittleEndian, bits=32, stored_bits=32)
    big.PixelRepresentation = 1
    values = stored.astype(np.int32) - 1024
    big.RescaleIntercept = 0.0
    big.PixelData = values.astype("<i4").tobytes()
    big["PixelData"].VR = "OW"
    lossless("bits32", big)

    # YBR_FULL_422, uncompressed: Y for every pixel, Cb/Cr shared by pairs
    rgb = np.zeros((SIDE, SIDE, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, SIDE, dtype=np.uint8)[None, :]
    rgb[..., 1] = 128
    rgb[..., 2] = np.linspace(255, 0, SIDE, dtype=np.uint8)[:, None]
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    cbp = (cb[:, 0::2] + cb[:, 1::2]) / 2
    crp = (cr[:, 0::2] + cr[:, 1::2]) / 2
    packed = np.empty((SIDE, SIDE // 2, 4), np.uint8)
    packed[..., 0] = np.clip(np.round(y[:, 0::2]), 0, 255)
    packed[..., 1] = np.clip(np.round(y[:, 1::2]), 0, 255)
    packed[..., 2] = np.clip(np.round(cbp), 0, 255)
    packed[..., 3] = np.clip(np.round(crp), 0, 255)
    ybr = base(stored, ExplicitVRLittleEndian, bits=8, stored_bits=8)
    ybr.SamplesPerPixel = 3
    ybr.PhotometricInterpretation = "YBR_FULL_422"
    ybr.PlanarConfiguration = 0
    del ybr.RescaleSlope, ybr.RescaleIntercept
    ybr.PixelData = packed.tobytes()
    ybr["PixelData"].VR = "OB"
    save(ybr, dicom / "ybr_full_422.dcm")
    expected["ybr_full_422_rgb"] = rgb.reshape(-1).tolist()

    # a series of 3 slices, file names not in slice order, and a second series
    series = out / "series"
    series.mkdir(exist_ok=True)
    uid = "1.2.826.0.1.3680043.8.498.1"
    for name, z, inst in [("b.dcm", -5.0, 3), ("c.dcm", -15.0, 1), ("a.dcm", -10.0, 2)]:
        s = stored.copy()
        s[0, 0] = 100 * inst
        save(native(base(s, ExplicitVRLittleEndian, series=uid, instance=inst, z=z), s, ExplicitVRLittleEndian), series / name)
    for i in range(2):
        s = stored.copy()
        save(native(base(s, ExplicitVRLittleEndian, series=uid + ".2", instance=i + 1, z=float(i)), s, ExplicitVRLittleEndian), series / f"other{i}.dcm")
    expected["series"] = {"uid": uid, "order": ["c.dcm", "a.dcm", "b.dcm"], "corner_hu": [100 * i - 1024.0 for i in (1, 2, 3)]}

    # NIfTI: voxel value v = x_R + 10 y_A + 100 z_S once canonical (RAS), stored permuted and flipped
    shape = (5, 4, 3)  # canonical x (R), y (A), z (S)
    ras = np.fromfunction(lambda i, j, k: i + 10 * j + 100 * k, shape, dtype=np.float64).astype(np.int16)
    # store as (z flipped, x flipped, y): axis 0 -> I (toward inferior), axis 1 -> L, axis 2 -> A
    stored_vol = np.flip(np.flip(ras, 2), 0).transpose(2, 0, 1).copy()
    affine = np.zeros((4, 4))
    affine[2, 0] = -2.5  # voxel axis 0 goes toward inferior
    affine[0, 1] = -0.8  # voxel axis 1 goes toward the patient's left
    affine[1, 2] = 0.8   # voxel axis 2 goes toward anterior
    affine[3, 3] = 1.0
    img = nib.Nifti1Image(stored_vol, affine)
    img.header.set_slope_inter(2.0, -50.0)
    nifti = out / "nifti"
    nifti.mkdir(exist_ok=True)
    nib.save(img, nifti / "volume.nii.gz")
    check = nib.as_closest_canonical(nib.load(nifti / "volume.nii.gz"))
    canon = np.asarray(check.dataobj).astype(np.float64)
    assert np.array_equal(canon, ras * 2.0 - 50.0), "nibabel's canonical view differs"
    assert nib.aff2axcodes(img.affine) == ("I", "L", "A")
    expected["nifti"] = {"shape_ras": list(shape), "slope": 2.0, "inter": -50.0}

    (out / "expected.json").write_text(json.dumps(expected))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
