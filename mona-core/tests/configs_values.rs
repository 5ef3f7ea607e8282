//! The shipped task configs resolve to the official configs' values (COCO, VOC, ADE20K and
//! classification, Mona and baselines).

mod shipped_configs;

use shipped_configs::*;

#[test]
fn coco_mona_resolves_to_spec() {
    let cfg = load_task("mona/swin-b_coco", "cascade_mask_swin_base_3x_coco", "mona");
    assert_str(&cfg, "model.type", "CascadeRCNN");
    assert_str(
        &cfg,
        "load_from",
        "/pretrained_model/swin_base_patch4_window7_224_22k.pth",
    );

    // Backbone: Swin-B.
    assert_eq!(int(&cfg, "model.backbone.embed_dim"), 128);
    assert_ints(&cfg, "model.backbone.depths", &[2, 2, 18, 2]);
    assert_ints(&cfg, "model.backbone.num_heads", &[4, 8, 16, 32]);
    assert_eq!(int(&cfg, "model.backbone.window_size"), 7);
    assert_close(&cfg, "model.backbone.mlp_ratio", 4.0);
    assert!(get::<bool>(&cfg, "model.backbone.qkv_bias"));
    absent(&cfg, "model.backbone.qk_scale");
    assert_close(&cfg, "model.backbone.drop_path_rate", 0.3);
    assert!(!get::<bool>(&cfg, "model.backbone.ape"));
    assert!(get::<bool>(&cfg, "model.backbone.patch_norm"));
    assert_ints(&cfg, "model.backbone.out_indices", &[0, 1, 2, 3]);
    assert!(!get::<bool>(&cfg, "model.backbone.use_checkpoint"));
    assert_str(&cfg, "model.backbone.method.type", "mona");

    // Neck and RPN.
    assert_str(&cfg, "model.neck.type", "FPN");
    assert_ints(&cfg, "model.neck.in_channels", &[128, 256, 512, 1024]);
    assert_eq!(int(&cfg, "model.neck.out_channels"), 256);
    assert_eq!(int(&cfg, "model.neck.num_outs"), 5);
    assert_ints(
        &cfg,
        "model.rpn_head.anchor_generator.strides",
        &[4, 8, 16, 32, 64],
    );
    assert_floats(
        &cfg,
        "model.rpn_head.anchor_generator.ratios",
        &[0.5, 1.0, 2.0],
    );
    assert_close(&cfg, "model.rpn_head.loss_bbox.beta", 1.0 / 9.0);

    // Cascade RoI head: the three ConvFCBBoxHeads of the Mona config.
    assert_str(&cfg, "model.roi_head.type", "CascadeRoIHead");
    assert_eq!(int(&cfg, "model.roi_head.num_stages"), 3);
    assert_floats(&cfg, "model.roi_head.stage_loss_weights", &[1.0, 0.5, 0.25]);
    let heads = value(&cfg, "model.roi_head.bbox_head")
        .as_array()
        .expect("bbox_head is a list");
    assert_eq!(heads.len(), 3, "three cascade stages");
    let stds = [
        [0.1, 0.1, 0.2, 0.2],
        [0.05, 0.05, 0.1, 0.1],
        [0.033, 0.033, 0.067, 0.067],
    ];
    for (stage, expected) in stds.iter().enumerate() {
        let head = |key: &str| format!("model.roi_head.bbox_head.{stage}.{key}");
        assert_str(&cfg, &head("type"), "ConvFCBBoxHead");
        assert_eq!(int(&cfg, &head("num_shared_convs")), 4);
        assert_eq!(int(&cfg, &head("num_shared_fcs")), 1);
        assert_eq!(int(&cfg, &head("fc_out_channels")), 1024);
        assert_eq!(int(&cfg, &head("num_classes")), 80);
        assert!(!get::<bool>(&cfg, &head("reg_class_agnostic")));
        assert!(get::<bool>(&cfg, &head("reg_decoded_bbox")));
        assert_str(&cfg, &head("norm_cfg.type"), "SyncBN");
        assert_str(&cfg, &head("loss_bbox.type"), "GIoULoss");
        assert_close(&cfg, &head("loss_bbox.loss_weight"), 10.0);
        assert_floats(&cfg, &head("bbox_coder.target_means"), &[0.0; 4]);
        assert_floats(&cfg, &head("bbox_coder.target_stds"), expected);
    }
    assert_eq!(
        int(
            &cfg,
            "model.roi_head.mask_roi_extractor.roi_layer.output_size"
        ),
        14
    );
    assert_str(&cfg, "model.roi_head.mask_head.type", "FCNMaskHead");
    assert_eq!(int(&cfg, "model.roi_head.mask_head.num_classes"), 80);

    // train_cfg / test_cfg.
    assert_close(&cfg, "model.train_cfg.rpn.assigner.pos_iou_thr", 0.7);
    assert_close(&cfg, "model.train_cfg.rpn.assigner.neg_iou_thr", 0.3);
    assert_eq!(int(&cfg, "model.train_cfg.rpn.sampler.num"), 256);
    assert_eq!(int(&cfg, "model.train_cfg.rpn_proposal.nms_pre"), 2000);
    assert_eq!(int(&cfg, "model.train_cfg.rpn_proposal.max_per_img"), 2000);
    let rcnn = value(&cfg, "model.train_cfg.rcnn")
        .as_array()
        .expect("rcnn is a list");
    assert_eq!(rcnn.len(), 3);
    for (stage, iou) in [0.5, 0.6, 0.7].iter().enumerate() {
        let key = |k: &str| format!("model.train_cfg.rcnn.{stage}.{k}");
        assert_close(&cfg, &key("assigner.pos_iou_thr"), *iou);
        assert_close(&cfg, &key("assigner.neg_iou_thr"), *iou);
        assert_close(&cfg, &key("assigner.min_pos_iou"), *iou);
        assert!(!get::<bool>(&cfg, &key("assigner.match_low_quality")));
        assert_eq!(int(&cfg, &key("sampler.num")), 512);
        assert_close(&cfg, &key("sampler.pos_fraction"), 0.25);
        assert_eq!(int(&cfg, &key("mask_size")), 28);
    }
    assert_eq!(int(&cfg, "model.test_cfg.rpn.nms_pre"), 1000);
    assert_close(&cfg, "model.test_cfg.rcnn.score_thr", 0.05);
    assert_close(&cfg, "model.test_cfg.rcnn.nms.iou_threshold", 0.5);
    assert_eq!(int(&cfg, "model.test_cfg.rcnn.max_per_img"), 100);
    assert_close(&cfg, "model.test_cfg.rcnn.mask_thr_binary", 0.5);

    // Data: the DETR-style train pipeline reaches data.train.
    assert_eq!(int(&cfg, "data.samples_per_gpu"), 1);
    assert_eq!(int(&cfg, "data.workers_per_gpu"), 2);
    assert_str(&cfg, "data.train.type", "CocoDataset");
    assert_str(
        &cfg,
        "data.train.ann_file",
        "data/COCO/annotations/instances_train2017.json",
    );
    assert_str(&cfg, "data.val.img_prefix", "data/COCO/val2017/");
    assert_eq!(
        value(&cfg, "data.train.pipeline"),
        value(&cfg, "train_pipeline")
    );
    assert_str(&cfg, "data.train.pipeline.3.type", "AutoAugment");
    let policies = value(&cfg, "data.train.pipeline.3.policies")
        .as_array()
        .expect("policies is a list");
    assert_eq!(policies.len(), 2);
    assert_str(
        &cfg,
        "data.train.pipeline.3.policies.1.1.crop_type",
        "absolute_range",
    );
    assert_ints(
        &cfg,
        "data.train.pipeline.3.policies.1.1.crop_size",
        &[384, 600],
    );
    assert_eq!(
        get::<Vec<Vec<i64>>>(&cfg, "data.train.pipeline.3.policies.0.0.img_scale").len(),
        11,
        "short sides 480..=800 step 32"
    );
    assert_floats(&cfg, "img_norm_cfg.mean", &[123.675, 116.28, 103.53]);
    assert_floats(&cfg, "img_norm_cfg.std", &[58.395, 57.12, 57.375]);
    assert_eq!(
        get::<Vec<String>>(&cfg, "evaluation.metric"),
        ["bbox", "segm"]
    );

    // Optimizer and schedule.
    assert_str(&cfg, "optimizer.type", "AdamW");
    assert_close(&cfg, "optimizer.lr", 1e-4);
    assert_close(&cfg, "optimizer.weight_decay", 0.05);
    assert_floats(&cfg, "optimizer.betas", &[0.9, 0.999]);
    absent(&cfg, "optimizer.momentum");
    assert_eq!(
        table_keys(&cfg, "optimizer.paramwise_cfg.custom_keys"),
        ["absolute_pos_embed", "norm", "relative_position_bias_table"]
    );
    for key in ["absolute_pos_embed", "relative_position_bias_table", "norm"] {
        assert_eq!(
            float(
                &cfg,
                &format!("optimizer.paramwise_cfg.custom_keys.{key}.decay_mult")
            ),
            0.0
        );
    }
    assert_str(&cfg, "lr_config.policy", "step");
    assert_ints(&cfg, "lr_config.step", &[27, 33]);
    assert_str(&cfg, "lr_config.warmup", "linear");
    assert_eq!(int(&cfg, "lr_config.warmup_iters"), 500);
    assert_close(&cfg, "lr_config.warmup_ratio", 0.001);
    assert_str(&cfg, "runner.type", "EpochBasedRunnerAmp");
    assert_eq!(int(&cfg, "runner.max_epochs"), 36);
    assert_str(&cfg, "optimizer_config.type", "DistOptimizerHook");
    assert!(get::<bool>(&cfg, "optimizer_config.use_fp16"));
    absent(&cfg, "optimizer_config.grad_clip");
    absent(&cfg, "fp16");
    assert_eq!(int(&cfg, "checkpoint_config.interval"), 1);
    assert_eq!(int(&cfg, "log_config.interval"), 50);
}

// ---------------------------------------------------------------------------------------------
// VOC detection

#[test]
fn voc_detection_mona_resolves_to_spec() {
    let cfg = load_task("mona/swin-l_voc", "voc_retinanet_swin_large_1x", "mona");
    assert_str(&cfg, "model.type", "RetinaNet");
    assert_eq!(int(&cfg, "model.backbone.embed_dim"), 192);
    assert_ints(&cfg, "model.backbone.num_heads", &[6, 12, 24, 48]);
    assert_close(&cfg, "model.backbone.drop_path_rate", 0.2);
    assert_ints(&cfg, "model.backbone.out_indices", &[1, 2, 3]);
    assert_eq!(int(&cfg, "model.backbone.frozen_stages"), 1);
    assert_str(&cfg, "model.backbone.method.type", "mona");
    assert_ints(&cfg, "model.neck.in_channels", &[384, 768, 1536]);
    assert_eq!(int(&cfg, "model.neck.start_level"), 0);
    assert_str(&cfg, "model.neck.add_extra_convs", "on_input");
    assert_str(&cfg, "model.bbox_head.type", "RetinaHead");
    assert_eq!(int(&cfg, "model.bbox_head.num_classes"), 20);
    assert_eq!(
        int(&cfg, "model.bbox_head.anchor_generator.octave_base_scale"),
        4
    );
    assert_eq!(
        int(&cfg, "model.bbox_head.anchor_generator.scales_per_octave"),
        3
    );
    assert_ints(
        &cfg,
        "model.bbox_head.anchor_generator.strides",
        &[8, 16, 32, 64, 128],
    );
    assert_str(&cfg, "model.bbox_head.loss_cls.type", "FocalLoss");
    assert_close(&cfg, "model.bbox_head.loss_cls.gamma", 2.0);
    assert_close(&cfg, "model.bbox_head.loss_cls.alpha", 0.25);
    assert_str(&cfg, "model.bbox_head.loss_bbox.type", "L1Loss");
    assert_close(&cfg, "model.train_cfg.assigner.pos_iou_thr", 0.5);
    assert_close(&cfg, "model.train_cfg.assigner.neg_iou_thr", 0.4);
    assert_eq!(int(&cfg, "model.train_cfg.allowed_border"), -1);
    assert_eq!(int(&cfg, "model.test_cfg.nms_pre"), 1000);
    assert_eq!(int(&cfg, "model.test_cfg.max_per_img"), 100);

    assert_str(&cfg, "data.train.type", "RepeatDataset");
    assert_eq!(int(&cfg, "data.train.times"), 3);
    assert_eq!(
        get::<Vec<String>>(&cfg, "data.train.dataset.ann_file").len(),
        2
    );
    assert_eq!(int(&cfg, "data.samples_per_gpu"), 1);
    assert_str(&cfg, "evaluation.metric", "mAP");

    assert_str(&cfg, "optimizer.type", "AdamW");
    assert_close(&cfg, "optimizer.lr", 1e-4);
    assert_close(&cfg, "optimizer.weight_decay", 0.05);
    assert_str(&cfg, "lr_config.policy", "step");
    assert_ints(&cfg, "lr_config.step", &[3]);
    absent(&cfg, "lr_config.warmup");
    assert_str(&cfg, "runner.type", "EpochBasedRunnerAmp");
    assert_eq!(int(&cfg, "runner.max_epochs"), 4);
    assert!(get::<bool>(&cfg, "optimizer_config.use_fp16"));
    assert_str(
        &cfg,
        "load_from",
        "/pretrained_model/swin_large_patch4_window7_224_22k.pth",
    );
}

// ---------------------------------------------------------------------------------------------
// ADE20K

const ADE: (&str, &str) = ("mona/swin-l_ade20k", "ade20k_upernet_swin_large_160k");

#[test]
fn ade20k_mona_resolves_to_spec() {
    let cfg = load_task(ADE.0, ADE.1, "mona");
    assert_str(&cfg, "model.type", "EncoderDecoder");
    assert_eq!(int(&cfg, "model.backbone.embed_dim"), 192);
    assert_ints(&cfg, "model.backbone.depths", &[2, 2, 18, 2]);
    assert_ints(&cfg, "model.backbone.num_heads", &[6, 12, 24, 48]);
    assert_close(&cfg, "model.backbone.drop_path_rate", 0.2);
    assert_ints(&cfg, "model.backbone.out_indices", &[0, 1, 2, 3]);
    assert_str(&cfg, "model.backbone.method.type", "mona");

    assert_str(&cfg, "model.decode_head.type", "UPerHead");
    assert_ints(
        &cfg,
        "model.decode_head.in_channels",
        &[192, 384, 768, 1536],
    );
    assert_ints(&cfg, "model.decode_head.pool_scales", &[1, 2, 3, 6]);
    assert_eq!(int(&cfg, "model.decode_head.channels"), 512);
    assert_eq!(int(&cfg, "model.decode_head.num_classes"), 150);
    assert_str(&cfg, "model.decode_head.norm_cfg.type", "SyncBN");
    assert_str(&cfg, "model.auxiliary_head.type", "FCNHead");
    assert_eq!(int(&cfg, "model.auxiliary_head.in_channels"), 768);
    assert_eq!(int(&cfg, "model.auxiliary_head.in_index"), 2);
    assert_eq!(int(&cfg, "model.auxiliary_head.num_classes"), 150);
    assert_str(&cfg, "model.auxiliary_head.norm_cfg.type", "SyncBN");
    assert_close(&cfg, "model.auxiliary_head.loss_decode.loss_weight", 0.4);
    assert_str(&cfg, "model.test_cfg.mode", "whole");

    assert_str(&cfg, "optimizer.type", "AdamW");
    assert_close(&cfg, "optimizer.lr", 3e-4);
    assert_close(&cfg, "optimizer.weight_decay", 0.01);
    absent(&cfg, "optimizer.momentum");
    assert_eq!(
        table_keys(&cfg, "optimizer.paramwise_cfg.custom_keys"),
        [
            "absolute_pos_embed",
            "backbone",
            "norm",
            "relative_position_bias_table"
        ]
    );
    assert_close(
        &cfg,
        "optimizer.paramwise_cfg.custom_keys.backbone.lr_mult",
        1.0,
    );

    // lr_config was replaced (`_delete_`), not merged into the base's poly 0.9 / min_lr 1e-4.
    assert_eq!(
        table_keys(&cfg, "lr_config"),
        [
            "by_epoch",
            "min_lr",
            "policy",
            "power",
            "warmup",
            "warmup_iters",
            "warmup_ratio"
        ]
    );
    assert_str(&cfg, "lr_config.policy", "poly");
    assert_close(&cfg, "lr_config.power", 1.0);
    assert_eq!(float(&cfg, "lr_config.min_lr"), 0.0);
    assert_eq!(int(&cfg, "lr_config.warmup_iters"), 1500);
    assert_close(&cfg, "lr_config.warmup_ratio", 1e-6);
    assert!(!get::<bool>(&cfg, "lr_config.by_epoch"));

    assert_str(&cfg, "runner.type", "IterBasedRunner");
    assert_eq!(int(&cfg, "runner.max_iters"), 160_000);
    assert_eq!(int(&cfg, "evaluation.interval"), 16_000);
    assert_str(&cfg, "evaluation.metric", "mIoU");
    assert_eq!(int(&cfg, "checkpoint_config.interval"), 16_000);
    assert!(get::<bool>(&cfg, "cudnn_benchmark"));
    assert_eq!(int(&cfg, "data.samples_per_gpu"), 2);
    assert_eq!(int(&cfg, "data.workers_per_gpu"), 4);
    assert_str(&cfg, "data.train.type", "ADE20KDataset");
    assert_str(&cfg, "data.train.pipeline.1.type", "LoadAnnotations");
    assert!(get::<bool>(&cfg, "data.train.pipeline.1.reduce_zero_label"));
    assert_ints(&cfg, "data.train.pipeline.3.crop_size", &[512, 512]);
    assert_close(&cfg, "data.train.pipeline.3.cat_max_ratio", 0.75);
}

#[test]
fn ade20k_baselines_use_the_baseline_hyper_parameters() {
    for method in &METHODS[1..] {
        let cfg = load_task(ADE.0, ADE.1, method);
        assert_close(&cfg, "optimizer.lr", 6e-5);
        assert_close(&cfg, "optimizer.weight_decay", 0.01);
        absent(&cfg, "optimizer.paramwise_cfg.custom_keys.backbone");
        assert_eq!(
            table_keys(&cfg, "optimizer.paramwise_cfg.custom_keys"),
            ["absolute_pos_embed", "norm", "relative_position_bias_table"]
        );
        assert_close(&cfg, "model.backbone.drop_path_rate", 0.3);
        // Schedule unchanged.
        assert_close(&cfg, "lr_config.power", 1.0);
        assert_eq!(int(&cfg, "lr_config.warmup_iters"), 1500);
        // SyncBN in `full` and `fixed`, plain BN in the others (as in the official files).
        let norm = if matches!(*method, "full" | "fixed") {
            "SyncBN"
        } else {
            "BN"
        };
        assert_str(&cfg, "model.decode_head.norm_cfg.type", norm);
        assert_str(&cfg, "model.auxiliary_head.norm_cfg.type", norm);
    }
    let full = load_task(ADE.0, ADE.1, "full");
    assert_str(&full, "model.backbone.method.type", "full");
    assert_close(&full, "optimizer.lr", 6e-5);
    absent(&full, "optimizer.paramwise_cfg.custom_keys.backbone");
    assert_close(&full, "model.backbone.drop_path_rate", 0.3);
}

// ---------------------------------------------------------------------------------------------
// Classification

/// (folder, stem, classes, Mona lr, ann-file root)
const CLS: [(&str, &str, i64, f64, &str); 3] = [
    (
        "mona/swin-l_oxford-flower",
        "swin-large_4xb8_oxford_flower",
        102,
        3.125e-5,
        "data/oxford_flower/",
    ),
    (
        "mona/swin-l_oxford-pet",
        "swin-large_4xb8_oxford_pet",
        37,
        3.125e-5,
        "data/oxford_pet/",
    ),
    (
        "mona/swin-l_voc",
        "swin-large_4xb8_voc",
        20,
        1.5625e-5,
        "data/voc/",
    ),
];

#[test]
fn classification_mona_resolves_to_spec() {
    for (folder, stem, classes, lr, root) in CLS {
        let cfg = load_task(folder, stem, "mona");
        assert_str(&cfg, "model.type", "ImageClassifier");
        assert_eq!(int(&cfg, "model.backbone.embed_dim"), 192);
        assert_ints(&cfg, "model.backbone.depths", &[2, 2, 18, 2]);
        assert_ints(&cfg, "model.backbone.num_heads", &[6, 12, 24, 48]);
        assert_eq!(int(&cfg, "model.backbone.window_size"), 7);
        assert_close(&cfg, "model.backbone.drop_path_rate", 0.3);
        assert_ints(&cfg, "model.backbone.out_indices", &[3]);
        assert_str(&cfg, "model.backbone.method.type", "mona");
        assert_str(&cfg, "model.neck.type", "GlobalAveragePooling");
        assert_str(&cfg, "model.head.type", "LinearClsHead");
        assert_eq!(int(&cfg, "model.head.in_channels"), 1536);
        assert_eq!(int(&cfg, "model.head.num_classes"), classes);
        assert_str(&cfg, "model.head.loss.type", "CrossEntropyLoss");
        assert_ints(&cfg, "model.head.topk", &[1, 5]);

        assert_eq!(int(&cfg, "data.samples_per_gpu"), 4);
        assert_eq!(int(&cfg, "data.workers_per_gpu"), 2);
        assert_str(
            &cfg,
            "data.train.ann_file",
            &format!("{root}train2mmcls.txt"),
        );
        assert_str(&cfg, "data.val.ann_file", &format!("{root}test2mmcls.txt"));
        assert_str(&cfg, "data.test.ann_file", &format!("{root}test2mmcls.txt"));
        assert_str(&cfg, "data.train.pipeline.1.type", "RandomResizedCrop");
        assert_eq!(int(&cfg, "data.train.pipeline.1.size"), 224);
        assert_ints(&cfg, "data.val.pipeline.1.size", &[256, -1]);
        assert_eq!(int(&cfg, "data.val.pipeline.2.crop_size"), 224);
        assert_str(&cfg, "evaluation.metric", "accuracy");

        assert_str(&cfg, "optimizer.type", "AdamW");
        assert_close(&cfg, "optimizer.lr", lr);
        assert_close(&cfg, "optimizer.weight_decay", 0.05);
        assert_close(&cfg, "optimizer.eps", 1e-8);
        assert_floats(&cfg, "optimizer.betas", &[0.9, 0.999]);
        assert_eq!(float(&cfg, "optimizer.paramwise_cfg.norm_decay_mult"), 0.0);
        assert_eq!(float(&cfg, "optimizer.paramwise_cfg.bias_decay_mult"), 0.0);
        assert_eq!(
            table_keys(&cfg, "optimizer.paramwise_cfg.custom_keys"),
            [".absolute_pos_embed", ".relative_position_bias_table"]
        );
        assert_close(&cfg, "optimizer_config.grad_clip.max_norm", 5.0);
        assert_str(&cfg, "lr_config.policy", "CosineAnnealing");
        assert!(!get::<bool>(&cfg, "lr_config.by_epoch"));
        assert_close(&cfg, "lr_config.min_lr_ratio", 0.01);
        assert_eq!(int(&cfg, "lr_config.warmup_iters"), 20);
        assert!(get::<bool>(&cfg, "lr_config.warmup_by_epoch"));
        assert_close(&cfg, "lr_config.warmup_ratio", 1e-3);
        assert_str(&cfg, "runner.type", "EpochBasedRunner");
        assert_eq!(int(&cfg, "runner.max_epochs"), 100);
        assert_str(&cfg, "fp16.loss_scale", "dynamic");
        assert_eq!(int(&cfg, "checkpoint_config.interval"), 101);
        assert_eq!(int(&cfg, "log_config.interval"), 100);
        assert_str(
            &cfg,
            "load_from",
            "/pretrained_model/swin_large_patch4_window7_224_22k.pth",
        );
    }
}

#[test]
fn classification_baselines_use_the_baseline_lr() {
    // Flowers / Pets: Mona 3.125e-5, baselines 1.5625e-5; VOC: 1.5625e-5 for all.
    for (folder, stem, classes, _, _) in CLS {
        for method in &METHODS[1..] {
            let cfg = load_task(folder, stem, method);
            assert_close(&cfg, "optimizer.lr", 1.5625e-5);
            assert_eq!(int(&cfg, "model.head.num_classes"), classes);
        }
    }
    let lora = load_task(
        "mona/swin-l_oxford-flower",
        "swin-large_4xb8_oxford_flower",
        "lora",
    );
    assert_str(&lora, "model.backbone.method.type", "lora");
    assert_close(&lora, "optimizer.lr", 1.5625e-5);
    let mona = load_task(
        "mona/swin-l_oxford-flower",
        "swin-large_4xb8_oxford_flower",
        "mona",
    );
    assert_close(&mona, "optimizer.lr", 3.125e-5);
}
