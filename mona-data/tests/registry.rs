//! Every transform and dataset of this crate is registered (a missing link fails here).

use mona_core::registry::names;
use mona_data::{DatasetEntry, TransformEntry};

#[test]
fn registered_names() {
    let transforms = names::<TransformEntry>();
    for name in [
        "CenterCrop",
        "Collect",
        "ImageToTensor",
        "LoadImageFromFile",
        "Normalize",
        "RandomFlip",
        "RandomResizedCrop",
        "Resize",
        "ToTensor",
    ] {
        assert!(
            transforms.contains(&name),
            "{name} missing from {transforms:?}"
        );
    }
    let datasets = names::<DatasetEntry>();
    for name in [
        "CustomDataset",
        "OxfordFlowerMona",
        "OxfordPetMona",
        "VOCMona",
    ] {
        assert!(datasets.contains(&name), "{name} missing from {datasets:?}");
    }
    // A registry name must be unique: lookups take the first match.
    for list in [&transforms, &datasets] {
        let mut sorted = list.clone();
        sorted.dedup();
        assert_eq!(&sorted, list, "duplicate registrations");
    }
}
