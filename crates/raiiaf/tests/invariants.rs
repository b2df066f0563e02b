//! Invariants held by the types: a tensor view checks itself at
//! construction, records are looked up by name and must belong to the
//! archive decoding them, and the writer cannot be handed inconsistent input.

use raiiaf::format::{self, Archive, Codec, Contents, ReadOptions};
use raiiaf::{DType, Error, Tensor, TensorRef};

fn file(codec: Codec) -> Vec<u8> {
    let a: Vec<u8> = (0..64u8).collect();
    let contents = Contents {
        latents: vec![
            ("a".into(), TensorRef::new(DType::F32, vec![2, 8], &a).unwrap()),
            ("b".into(), TensorRef::new(DType::F16, vec![4, 8], &a).unwrap()),
        ],
        image: Some(b"img"),
        ..Contents::default()
    };
    format::encode(&contents, codec).unwrap()
}

#[test]
fn tensor_views_check_length_shape_and_rank() {
    let data = [0u8; 16];
    assert!(TensorRef::new(DType::F32, vec![4], &data).is_ok());
    for (dtype, shape) in [
        (DType::F32, vec![5]),           // wrong length
        (DType::F16, vec![4]),           // wrong length for the itemsize
        (DType::F32, vec![]),            // rank 0
        (DType::F32, vec![1; 9]),        // rank 9
        (DType::F32, vec![4, 0]),        // empty axis
        (DType::F32, vec![u64::MAX, 2]), // overflow
    ] {
        assert!(
            matches!(
                TensorRef::new(dtype, shape.clone(), &data),
                Err(Error::InvalidArgument(_))
            ),
            "{dtype} {shape:?}"
        );
    }
    assert!(Tensor::new(DType::BF16, vec![3], vec![0; 6]).is_ok());
    assert!(Tensor::new(DType::BF16, vec![3], vec![0; 5]).is_err());
    let t = Tensor::new(DType::F32, vec![2, 2], vec![1; 16]).unwrap();
    assert_eq!(
        (t.dtype(), t.shape(), t.as_ref().data().len()),
        (DType::F32, &[2u64, 2][..], 16)
    );
}

#[test]
fn records_are_looked_up_by_name_and_belong_to_their_archive() {
    for codec in [Codec::Raw, Codec::Compact] {
        let bytes = file(codec);
        let archive = Archive::parse(&bytes, ReadOptions::default()).unwrap();
        let other_bytes = file(codec);
        let other = Archive::parse(&other_bytes, ReadOptions::default()).unwrap();
        let a = archive.tensor("a").unwrap();
        assert_eq!(
            (a.shape(), a.data()),
            (&[2u64, 8][..], &(0..64u8).collect::<Vec<_>>()[..])
        );
        assert_eq!(archive.tensor("b").unwrap().dtype(), DType::F16);
        let err = archive.tensor("c").unwrap_err().to_string();
        assert!(
            err.contains("no latent named \"c\"") && err.contains("\"a\""),
            "{err}"
        );
        // Another archive's record, or an edited copy, is refused, not sliced.
        let foreign = other.latent_record("a").unwrap();
        let mut out = vec![0u8; 64];
        assert!(matches!(
            archive.decode_latent_into(foreign, &mut out),
            Err(Error::InvalidArgument(_))
        ));
        let mut edited = archive.latent_record("a").unwrap().clone();
        edited.offset = 1 << 40;
        assert!(matches!(
            archive.decode_latent(&edited),
            Err(Error::InvalidArgument(_))
        ));
        // A record that is not a latent.
        let image = archive
            .manifest()
            .chunks()
            .iter()
            .find(|r| r.kind == "DATA")
            .unwrap();
        assert!(matches!(
            archive.decode_latent_into(image, &mut out),
            Err(Error::InvalidArgument(_))
        ));
        // The output buffer must fit the tensor exactly.
        let rec = archive.require_latent("a").unwrap();
        assert!(archive.decode_latent_into(rec, &mut [0u8; 63]).is_err());
        archive.decode_latent_into(rec, &mut out).unwrap();
    }
}
