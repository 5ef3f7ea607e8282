//! The official classification configs (Flowers, Pets, VOC; every method) build their whole
//! model unchanged, with the spec's head sizes and trainable sets (Swin-L parameters are lazy:
//! nothing is drawn).

use burn::tensor::Device;
use mona_cls::ImageClassifier;
use mona_core::config::Config;
use mona_core::params::param_infos;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/mona")
}

#[test]
fn official_classification_configs_build() {
    let cases = [
        ("swin-l_oxford-flower/swin-large_4xb8_oxford_flower", 102),
        ("swin-l_oxford-pet/swin-large_4xb8_oxford_pet", 37),
        ("swin-l_voc/swin-large_4xb8_voc", 20),
    ];
    for (stem, classes) in cases {
        for method in ["mona", "lora", "full"] {
            let path = root().join(format!("{stem}_{method}.toml"));
            let cfg = Config::from_file(&path).unwrap();
            let model = ImageClassifier::from_config(&cfg.node("model").unwrap(), &Device::flex())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(model.num_classes(), classes, "{}", path.display());
            let infos = param_infos(&model);
            let head: usize = infos
                .iter()
                .filter(|p| p.key.starts_with("head."))
                .map(|p| p.numel())
                .sum();
            assert_eq!(head, 1536 * classes + classes);
            let trainable_backbone: usize = infos
                .iter()
                .filter(|p| p.key.starts_with("backbone.") && model.trainable(&p.key))
                .map(|p| p.numel())
                .sum();
            let expected = match method {
                "mona" => 5_267_712,
                "lora" => 4_620_288,
                _ => 194_995_476,
            };
            assert_eq!(trainable_backbone, expected, "{}", path.display());
        }
    }
}
