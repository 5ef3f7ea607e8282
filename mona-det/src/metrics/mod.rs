//! Detection metrics: VOC mAP (mmdet `eval_map`) and COCO box / mask AP (through hotcoco).

pub mod coco;
mod coco_checks;
mod coco_types;
pub mod voc;
