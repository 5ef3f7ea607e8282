//! How `train` picks its precision from the command line and the config.

use mona_core::config::Config;
use mona_core::nn::amp::Precision;
use mona_core::task_setup::training_precision;

fn cfg(text: &str) -> Config {
    Config::from_str_at(text, "run.toml").expect("toml")
}

#[test]
fn cli_flag_config_key_and_mmcv_fp16_choose_bf16() {
    assert_eq!(
        training_precision(&cfg(""), false).unwrap(),
        Precision::Fp32
    );
    assert_eq!(training_precision(&cfg(""), true).unwrap(), Precision::Bf16);
    let amp = cfg("[amp]\ndtype = \"bf16\"\n");
    assert_eq!(training_precision(&amp, false).unwrap(), Precision::Bf16);
    let fp32 = cfg("[amp]\ndtype = \"fp32\"\n[fp16]\nloss_scale = 512.0\n");
    assert_eq!(training_precision(&fp32, false).unwrap(), Precision::Fp32);
    let mmcv = cfg("[fp16]\nloss_scale = \"dynamic\"\n");
    assert_eq!(training_precision(&mmcv, false).unwrap(), Precision::Bf16);
    let fork = cfg("[optimizer_config]\ntype = \"DistOptimizerHook\"\nuse_fp16 = true\n");
    assert_eq!(training_precision(&fork, false).unwrap(), Precision::Bf16);
    let off = cfg("[optimizer_config]\nuse_fp16 = false\n");
    assert_eq!(training_precision(&off, false).unwrap(), Precision::Fp32);
    let fp32 = cfg("[amp]\ndtype = \"fp32\"\n[optimizer_config]\nuse_fp16 = true\n");
    assert_eq!(training_precision(&fp32, false).unwrap(), Precision::Fp32);
}

#[test]
fn a_use_fp16_that_is_not_a_boolean_names_the_key() {
    let err = training_precision(&cfg("[optimizer_config]\nuse_fp16 = \"yes\"\n"), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("optimizer_config.use_fp16"), "{err}");
}

#[test]
fn an_unknown_precision_names_the_file_and_key() {
    let err = training_precision(&cfg("[amp]\ndtype = \"fp8\"\n"), false).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("run.toml"), "{text}");
    assert!(text.contains("amp.dtype"), "{text}");
    assert!(text.contains("unknown precision `fp8`"), "{text}");
}
