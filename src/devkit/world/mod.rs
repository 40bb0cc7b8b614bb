//! A small synthetic world of fixed security cameras, defined once for training, footage and
//! tests: scene descriptions, a renderer that draws them as RGB images with simple shapes,
//! captions generated from a scene, a training-set writer, and footage with ground truth.
//!
//! Backgrounds (street, parking lot, corridor) are seen by day or at night; objects (a red
//! car, a white van, a blue truck, a person in green, a dog) stand on the left, in the
//! centre or on the right of a 4:3 frame, or anywhere across a 16:9 frame at any size,
//! among distractors and behind occluders ([`WideScene`]). Some object × place × light
//! compositions are never shown in training ([`HELD_OUT_COMPOSITIONS`]). Everything random
//! comes from a seeded [`WorldRng`], so the same seed renders the same pixels.
//!
//! The shipped model (`assets/models/frameseek-tiny`) was trained on these renders: a change
//! to a single pixel here is a change to its training data.
//!
//! One file per job: `rng` (the seeded generator), `scene` (what a camera sees, captions,
//! rendering jitter, held-out compositions), `canvas` (the drawing surface), `render` (4:3
//! scenes to pixels), `wide` (16:9 scenes and what a square view of one shows), `dataset`
//! (the training set), `cameras` (the 4:3 sample footage's script and labelled queries),
//! `footage` (rendering that script to video files with ground truth), `wide_footage` (the
//! 16:9 footage with edge, small and middle objects, and its queries).

mod cameras;
mod canvas;
mod dataset;
mod footage;
mod render;
mod rng;
mod scene;
mod wide;
mod wide_footage;

pub use cameras::{
    probe_frame_time, sample_cameras, sample_queries, scene_at, Appearance, CameraScript,
    FILTER_GROUP, IMAGE_GROUP, PARAPHRASE_GROUP,
};
pub use dataset::{training_crop, write_dataset, DatasetRecord};
pub use footage::{render_camera_video, render_footage, Footage, GroundTruthEvent, FOOTAGE_FPS};
pub use render::{render_scene, save_png, FRAME_HEIGHT, FRAME_WIDTH};
pub use rng::WorldRng;
pub use scene::{
    composition_group, is_held_out, Background, ObjectKind, PlacedObject, Position, RenderJitter,
    SceneSpec, TimeOfDay, HELD_OUT_COMPOSITIONS, HELD_OUT_GROUP, SEEN_GROUP,
};
pub use wide::{
    size_for_area, size_for_width, PixelBox, PropKind, WideObject, WideProp, WideScene,
};
pub use wide_footage::{
    render_wide_camera, render_wide_footage, wide_cameras, wide_queries, wide_scene_at, Placement,
    WideAppearance, WideCamera, WideFootage, WIDE_FOOTAGE_FPS, WIDE_QUERIES_ALL, WIDE_QUERIES_OWN,
};

/// The labelled-query format belongs to `frameseek eval` ([`crate::eval`]); the footage
/// generator writes it, and it is re-exported here under its former path.
pub use crate::eval::LabelledQuery;
