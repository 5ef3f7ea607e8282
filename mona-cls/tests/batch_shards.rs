//! A training batch cut into shards that run at the same time gives the whole batch's
//! loss and gradients up to summation order, with dropout and DropPath active (every
//! sample draws by its index in the whole batch); sharded inference gives the same logits.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use mona_cls::ImageClassifier;
use mona_cls::data::ClsBatch;
use mona_core::config::Config;
use mona_core::params::set_trainable;
use mona_core::runner::{forward_backward, may_split};

const BATCH: usize = 5;

/// The demo's model (Mona with dropout 0.1, DropPath 0.1), its Mona modules and head
/// trainable, on the autodiff flex device.
fn demo_model(device: &Device) -> ImageClassifier {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo/fashion_mnist_swin_mona.toml");
    let cfg = Config::from_file(path).unwrap();
    device.seed(3);
    let model = ImageClassifier::from_config(&cfg.node("model").unwrap(), device).unwrap();
    let rules = model.clone();
    set_trainable(model, &|k| rules.trainable(k))
}

fn batch(device: &Device) -> ClsBatch {
    ClsBatch {
        images: Tensor::random([BATCH, 3, 32, 32], Distribution::Normal(0.0, 1.0), device),
        labels: Some(Tensor::<1, Int>::from_data(
            TensorData::new(vec![0i64, 3, 7, 3, 9], [BATCH]),
            device,
        )),
        paths: Vec::new(),
    }
}

/// Every parameter's gradient, in visit order (empty where it has none).
fn flat(model: &ImageClassifier, grads: GradientsParams) -> Vec<Vec<f32>> {
    struct Collect(GradientsParams, Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = self.0.remove::<D>(param.id).map(|g| {
                g.into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .expect("f32 gradient")
            });
            self.1.push(values.unwrap_or_default());
        }
    }
    let mut c = Collect(grads, Vec::new());
    model.visit(&mut c);
    c.1
}

fn step(
    model: &ImageClassifier,
    batch: &ClsBatch,
    seed: u64,
    shards: usize,
) -> (f64, Vec<Vec<f32>>) {
    let device = Device::flex().autodiff();
    let (values, grads) = forward_backward(model, batch, seed, shards, &device).unwrap();
    (values.loss, flat(model, grads))
}

/// The largest difference between two gradient sets, relative to the largest entry.
fn worst(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    let mut worst = 0f32;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            x.len(),
            y.len(),
            "a parameter has a gradient in one run only"
        );
        for (p, q) in x.iter().zip(y) {
            worst = worst.max((p - q).abs());
        }
    }
    worst / scale
}

#[test]
fn shards_give_the_whole_batch_loss_and_gradients() {
    let device = Device::flex().autodiff();
    let model = demo_model(&device);
    assert!(may_split(&model), "the demo model has no BatchNorm");
    let batch = batch(&device);
    let (loss, whole) = step(&model, &batch, 11, 1);
    let trained = whole.iter().filter(|g| !g.is_empty()).count();
    assert!(trained > 10, "only {trained} parameters have gradients");
    for shards in [2, 3, BATCH] {
        let (l, g) = step(&model, &batch, 11, shards);
        assert!(
            (l - loss).abs() < 1e-6 * loss.abs(),
            "{shards} shards: loss {l} vs {loss}"
        );
        let w = worst(&whole, &g);
        assert!(
            w < 2e-6,
            "{shards} shards: gradients differ by {w} of the largest"
        );
    }
    // The draws matter, so the agreement above is that of the masks too.
    let (other_loss, other) = step(&model, &batch, 12, 1);
    assert!(worst(&whole, &other) > 1e-3 || (other_loss - loss).abs() > 1e-4);
}

#[test]
fn sharded_inference_gives_the_same_logits() {
    let device = Device::flex();
    let model = demo_model(&device.clone().autodiff()).valid();
    let images = Tensor::<4>::random([BATCH, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let whole = model
        .forward(images.clone(), false)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for shards in [2, 3] {
        let split = model
            .forward_sharded(images.clone(), shards)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(whole.len(), split.len());
        let w = whole
            .iter()
            .zip(&split)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(w < 1e-5, "{shards} shards: logits differ by {w}");
    }
}

/// An unlabelled batch is an error naming its images, whole or cut into shards (each shard
/// then names its own images), never a panic in a worker thread.
#[test]
fn an_unlabelled_batch_is_an_error_naming_its_images() {
    let device = Device::flex().autodiff();
    let model = demo_model(&device);
    let paths: Vec<std::path::PathBuf> = (0..BATCH).map(|i| format!("img{i}.png").into()).collect();
    let unlabelled = ClsBatch {
        labels: None,
        paths: paths.clone(),
        ..batch(&device)
    };
    let whole = forward_backward(&model, &unlabelled, 1, 1, &device)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert_eq!(
        whole,
        "batch of [img0.png, img1.png, img2.png, img3.png, img4.png]: has no gt_label: training needs labelled images"
    );
    let sharded = forward_backward(&model, &unlabelled, 1, 2, &device)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        sharded
            == "batch of [img0.png, img1.png, img2.png]: has no gt_label: training needs labelled images"
            || sharded
                == "batch of [img3.png, img4.png]: has no gt_label: training needs labelled images",
        "{sharded}"
    );
}
