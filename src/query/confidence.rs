//! Calibrated confidence: a clip's cosine similarity mapped to the probability that the clip
//! is a right answer, per model, so one threshold means the same for every query.
//!
//! The mapping is a logistic curve over the cosine, `confidence = σ(slope · cosine +
//! intercept)`: the model's own logit (`logit_scale · cosine`) rescaled and shifted, fitted on
//! labelled footage
//! (`frameseek eval --calibration-json` then `tools/reliability_diagram.py`; the method and
//! the measurements that chose it are in docs/ARCHITECTURE.md). The fit lives beside the
//! weights as `calibration.json`; a model without one gets an uncalibrated curve centred on
//! [`UNCALIBRATED_CENTRE`], and the daemon says so in its log.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Name of the calibration file in a model's folder.
pub const CALIBRATION_FILE: &str = "calibration.json";

/// The cosine at which an uncalibrated model's confidence is 0.5.
pub const UNCALIBRATED_CENTRE: f32 = 0.25;

/// A fitted calibration, as `calibration.json` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationFit {
    /// Multiplies the cosine.
    pub slope: f32,
    /// Added after the product.
    pub intercept: f32,
}

/// Why a calibration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a calibration.
    #[error("{path} is not a calibration ({{\"slope\": .., \"intercept\": ..}}): {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// The cosine-to-confidence mapping of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    fit: CalibrationFit,
    fitted: bool,
}

impl Calibration {
    /// A fitted calibration.
    pub fn fitted(fit: CalibrationFit) -> Self {
        Self { fit, fitted: true }
    }

    /// The uncalibrated curve: 0.5 at [`UNCALIBRATED_CENTRE`], as steep as the model's own
    /// softmax over `logit_scale · cosine`.
    pub fn uncalibrated(logit_scale: f32) -> Self {
        Self {
            fit: CalibrationFit {
                slope: logit_scale,
                intercept: -logit_scale * UNCALIBRATED_CENTRE,
            },
            fitted: false,
        }
    }

    /// The model folder's `calibration.json` when there is one, else the uncalibrated curve.
    pub fn for_model(folder: &Path, logit_scale: f32) -> Result<Self, CalibrationError> {
        let path = folder.join(CALIBRATION_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::uncalibrated(logit_scale))
            }
            Err(source) => {
                return Err(CalibrationError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let invalid = |reason: String| CalibrationError::Invalid {
            path: path.display().to_string(),
            reason,
        };
        let fit: CalibrationFit =
            serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if !(fit.slope.is_finite() && fit.intercept.is_finite() && fit.slope > 0.0) {
            return Err(invalid("slope must be positive and both finite".into()));
        }
        Ok(Self::fitted(fit))
    }

    /// Whether this curve was fitted on labelled footage.
    pub fn is_fitted(&self) -> bool {
        self.fitted
    }

    /// The confidence in [0, 1] of a clip whose best frame has cosine `score`.
    pub fn confidence(&self, score: f32) -> f32 {
        let z = self.fit.slope * score + self.fit.intercept;
        1.0 / (1.0 + (-z).exp())
    }

    /// The lowest cosine whose confidence reaches `confidence` (for thresholds on raw
    /// scores); `None` for a confidence of 0 or below (every score passes).
    pub fn min_score(&self, confidence: f32) -> Option<f32> {
        if confidence <= 0.0 {
            return None;
        }
        let c = confidence.min(1.0 - 1e-7);
        let z = (c / (1.0 - c)).ln();
        Some((z - self.fit.intercept) / self.fit.slope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_rises_with_the_score_and_stays_in_range() {
        let c = Calibration::fitted(CalibrationFit {
            slope: 50.0,
            intercept: -10.0,
        });
        assert!((c.confidence(0.2) - 0.5).abs() < 1e-6);
        assert!(c.confidence(0.3) > c.confidence(0.25));
        assert!(c.confidence(-1.0) >= 0.0 && c.confidence(1.0) <= 1.0);
        let s = c.min_score(0.9).unwrap();
        assert!((c.confidence(s) - 0.9).abs() < 1e-4);
        assert_eq!(c.min_score(0.0), None);
        let u = Calibration::uncalibrated(100.0);
        assert!(!u.is_fitted());
        assert!((u.confidence(UNCALIBRATED_CENTRE) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn calibration_files_are_read_or_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!Calibration::for_model(dir.path(), 100.0)
            .unwrap()
            .is_fitted());
        let path = dir.path().join(CALIBRATION_FILE);
        std::fs::write(&path, r#"{"slope": 40, "intercept": -8}"#).unwrap();
        let c = Calibration::for_model(dir.path(), 100.0).unwrap();
        assert!(c.is_fitted());
        assert!((c.confidence(0.2) - 0.5).abs() < 1e-6);
        std::fs::write(&path, r#"{"slope": -1, "intercept": 0}"#).unwrap();
        let e = Calibration::for_model(dir.path(), 100.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("calibration.json") && e.contains("positive"),
            "{e}"
        );
        std::fs::write(&path, "nope").unwrap();
        assert!(Calibration::for_model(dir.path(), 100.0).is_err());
    }
}
