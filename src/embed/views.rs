//! Views (issue 16): the squares of a video frame that are embedded, and where each lies in
//! the frame. CLIP sees a square; a view is a square crop of the upright frame (or the whole
//! frame padded to a square), resized to the model's input. Its [`Region`] is stored with the
//! source so a search can say where in the frame its best match was.

use serde::{Deserialize, Serialize};

/// Most views one frame can have (a frame key numbers them in 4 bits).
pub const MAX_VIEWS: usize = 16;

/// A rectangle of the frame as fractions of its width and height, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

/// Why a region given by a user is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("region {x},{y},{w},{h} is not a part of the frame: {why}; give x,y,w,h as fractions of the frame (each 0-1, w and h above 0, x+w and y+h at most 1), e.g. 0.5,0,0.5,1 for the right half")]
pub struct BadRegion {
    x: f32,
    y: f32,
    w: f32,
    h: f32,
    why: &'static str,
}

impl Region {
    /// The whole frame.
    pub const WHOLE: Region = Region {
        x: 0.0,
        y: 0.0,
        w: 1.0,
        h: 1.0,
    };

    /// A region from user input, checked to lie inside the frame.
    pub fn checked(x: f32, y: f32, w: f32, h: f32) -> Result<Self, BadRegion> {
        let bad = |why| BadRegion { x, y, w, h, why };
        if ![x, y, w, h].iter().all(|v| v.is_finite()) {
            return Err(bad("a value is not a number"));
        }
        if x < 0.0 || y < 0.0 || x > 1.0 || y > 1.0 {
            return Err(bad("x and y must be between 0 and 1"));
        }
        if w <= 0.0 || h <= 0.0 {
            return Err(bad("w and h must be above 0"));
        }
        // A little slack for decimal input such as 0.7,0,0.3,1.
        if x + w > 1.0 + 1e-4 || y + h > 1.0 + 1e-4 {
            return Err(bad("it reaches past the frame's right or bottom edge"));
        }
        Ok(Self { x, y, w, h })
    }

    /// Whether the two regions share some area (touching edges do not count).
    pub fn overlaps(&self, other: &Region) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }
}

/// Which views of each sampled frame are embedded (`ingest.views`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum ViewSet {
    /// One view: the short side resized to the model's input and the middle square cropped
    /// (frameseek before issue 16; the sides of a wide frame are not seen).
    Centre,
    /// Overlapping squares across the long side: the whole frame, at the model's scale, one
    /// more square than covering needs, so that anything up to about half the short side
    /// lies whole in some view (three views for 16:9 and 4:3, the middle one the old centre
    /// crop; one for a square frame).
    #[default]
    Cover,
    /// One view: the whole frame shrunk to fit the model's square, padded.
    Pad,
    /// `cover`, plus squares of half the short side over the whole frame (small objects at
    /// twice the scale; eleven views for 16:9).
    CoverTiles,
}

crate::setting::named_setting!(ViewSet, "centre, cover, pad or cover+tiles", {
    "centre" => Centre,
    "cover" => Cover,
    "pad" => Pad,
    "cover+tiles" => CoverTiles,
});

/// How one view is cut from the frame, in pixels of the frame scaled to `scaled`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewCut {
    /// Upright size the frame is scaled to for this view.
    pub scaled: (usize, usize),
    /// Top-left corner of the model's square in the scaled frame; for a padded view, where
    /// the scaled frame is placed in the square.
    pub origin: (usize, usize),
    /// The whole scaled frame is placed in a padded square (else a square is cut out).
    pub padded: bool,
    /// Where the view lies in the frame.
    pub region: Region,
}

/// Start positions of a window of `side` over `len`, evenly spread from 0 to `len - side`
/// (one at 0 when it fits): as few as cover `len`, plus `extra`.
fn spread(len: usize, side: usize, extra: usize) -> Vec<usize> {
    if len <= side {
        return vec![0];
    }
    let n = len.div_ceil(side) + extra;
    (0..n).map(|i| i * (len - side) / (n - 1)).collect()
}

/// Squares of `side` pixels covering a frame scaled to `scaled`, row by row, with `extra`
/// more per row or column than covering needs.
fn squares(scaled: (usize, usize), side: usize, extra: usize) -> Vec<ViewCut> {
    let (w, h) = scaled;
    let mut out = Vec::new();
    for y in spread(h, side, extra) {
        for x in spread(w, side, extra) {
            out.push(ViewCut {
                scaled,
                origin: (x, y),
                padded: false,
                region: Region {
                    x: x as f32 / w as f32,
                    y: y as f32 / h as f32,
                    w: side.min(w) as f32 / w as f32,
                    h: side.min(h) as f32 / h as f32,
                },
            });
        }
    }
    out
}

/// The frame scaled so that its short side is `short` pixels (upright `width` x `height`).
fn scaled_to_short(width: usize, height: usize, short: usize) -> (usize, usize) {
    let (w, h) = (width.max(1) as f64, height.max(1) as f64);
    if width <= height {
        (short, ((short as f64 * h / w).round() as usize).max(short))
    } else {
        (((short as f64 * w / h).round() as usize).max(short), short)
    }
}

impl ViewSet {
    /// The views of an upright frame of `width` x `height` for a model whose input is
    /// `crop` pixels square, and whose own preprocessing resizes the short side to
    /// `shortest_edge` (the `centre` view keeps exactly that). At most
    /// [`MAX_VIEWS`].
    pub fn cuts(
        self,
        width: usize,
        height: usize,
        crop: usize,
        shortest_edge: usize,
    ) -> Vec<ViewCut> {
        match self {
            Self::Centre => {
                let g = super::PixelGeometry {
                    shortest_edge,
                    ..super::PixelGeometry::clip_default(crop)
                };
                let (w, h) = g.resized_dims(width, height);
                let (left, top) = (w.saturating_sub(crop) / 2, h.saturating_sub(crop) / 2);
                vec![ViewCut {
                    scaled: (w, h),
                    origin: (left, top),
                    padded: false,
                    region: Region {
                        x: left as f32 / w as f32,
                        y: top as f32 / h as f32,
                        w: crop.min(w) as f32 / w as f32,
                        h: crop.min(h) as f32 / h as f32,
                    },
                }]
            }
            Self::Cover => squares(scaled_to_short(width, height, crop), crop, 1),
            Self::Pad => {
                let (w, h) = (width.max(1) as f64, height.max(1) as f64);
                let scaled = if w >= h {
                    (
                        crop,
                        ((crop as f64 * h / w).round() as usize).clamp(1, crop),
                    )
                } else {
                    (
                        ((crop as f64 * w / h).round() as usize).clamp(1, crop),
                        crop,
                    )
                };
                vec![ViewCut {
                    scaled,
                    origin: ((crop - scaled.0) / 2, (crop - scaled.1) / 2),
                    padded: true,
                    region: Region::WHOLE,
                }]
            }
            Self::CoverTiles => {
                let mut out = squares(scaled_to_short(width, height, crop), crop, 1);
                out.extend(squares(scaled_to_short(width, height, 2 * crop), crop, 0));
                // Extreme aspect ratios would make more tiles than a key can number.
                out.truncate(MAX_VIEWS);
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn union_covers_whole(cuts: &[ViewCut]) -> bool {
        // Every point of a 20x20 grid over the frame lies in some view.
        (0..20).all(|i| {
            (0..20).all(|j| {
                let (px, py) = ((i as f32 + 0.5) / 20.0, (j as f32 + 0.5) / 20.0);
                cuts.iter().any(|c| {
                    let r = c.region;
                    px >= r.x && px <= r.x + r.w && py >= r.y && py <= r.y + r.h
                })
            })
        })
    }

    #[test]
    fn cover_sees_the_whole_frame_of_any_aspect_and_centre_does_not() {
        for (w, h) in [
            (1920, 1080),
            (1280, 720),
            (640, 480),
            (480, 640),
            (500, 500),
            (3840, 1080),
        ] {
            let cover = ViewSet::Cover.cuts(w, h, 224, 224);
            assert!(union_covers_whole(&cover), "{w}x{h}: {cover:?}");
            assert!(cover
                .iter()
                .all(|c| c.origin.0 + 224 <= c.scaled.0 && c.origin.1 + 224 <= c.scaled.1));
            assert!(union_covers_whole(
                &ViewSet::CoverTiles.cuts(w, h, 224, 224)
            ));
            assert!(union_covers_whole(&ViewSet::Pad.cuts(w, h, 224, 224)));
        }
        let cover = ViewSet::Cover.cuts(1920, 1080, 224, 224);
        assert_eq!(cover.len(), 3);
        // The middle view is the old centre crop.
        let centre = ViewSet::Centre.cuts(1920, 1080, 224, 224);
        assert!(
            (cover[1].region.x - centre[0].region.x).abs() < 0.01,
            "{cover:?}"
        );
        assert_eq!(ViewSet::CoverTiles.cuts(1920, 1080, 224, 224).len(), 11);
        assert_eq!(ViewSet::Cover.cuts(500, 500, 224, 224).len(), 1);
        assert!(!union_covers_whole(&centre));
        let r = centre[0].region;
        assert!(
            (r.x - 0.219).abs() < 0.01 && (r.w - 0.563).abs() < 0.01,
            "{r:?}"
        );
    }

    #[test]
    fn regions_overlap_and_bad_ones_say_what_to_give() {
        let left = Region::checked(0.0, 0.0, 0.3, 1.0).unwrap();
        let right = Region::checked(0.7, 0.0, 0.3, 1.0).unwrap();
        assert!(!left.overlaps(&right));
        assert!(left.overlaps(&Region::WHOLE));
        let e = Region::checked(0.8, 0.0, 0.5, 1.0).unwrap_err().to_string();
        assert!(
            e.contains("right or bottom edge") && e.contains("x,y,w,h"),
            "{e}"
        );
        assert!(Region::checked(0.1, 0.1, 0.0, 0.5).is_err());
        assert!(Region::checked(f32::NAN, 0.1, 0.1, 0.5).is_err());
    }
}
