//! Detection metrics: VOC mAP (mmdet `eval_map`) and COCO box / mask AP (through hotcoco).

pub mod coco;
pub mod voc;
