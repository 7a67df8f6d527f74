//! Where a picture goes: a `.svg` or `.png` file (the format named by the
//! file's extension) or an SVG string to inline in a page. The one place
//! that picks a plotters backend: the charts and plots only draw on the
//! area they are given (a [`Picture`]). Also the font that plot text needs.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// A drawing's outcome; the error is plotters' message.
pub(crate) type DrawResult = std::result::Result<(), String>;

/// Something that draws itself on a drawing area of any backend.
pub(crate) trait Picture {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

/// Draw `picture`, `size` pixels, to `out` (`.svg` or `.png`).
pub(crate) fn to_file(picture: &impl Picture, size: (u32, u32), out: &Path) -> Result<()> {
    let res = match format_of(out)? {
        Format::Svg => picture.draw(SVGBackend::new(out, size).into_drawing_area()),
        Format::Png => picture.draw(BitMapBackend::new(out, size).into_drawing_area()),
    };
    res.map_err(|e| Error::Io {
        path: out.display().to_string(),
        source: std::io::Error::other(e),
    })
}

/// Draw `picture`, `size` pixels, as SVG text; `title` names it in an error.
pub(crate) fn to_svg(picture: &impl Picture, size: (u32, u32), title: &str) -> Result<String> {
    let mut svg = String::new();
    let res = picture.draw(SVGBackend::with_string(&mut svg, size).into_drawing_area());
    res.map_err(|e| Error::Io {
        path: format!("<chart `{title}`>"),
        source: std::io::Error::other(e),
    })?;
    Ok(svg)
}

enum Format {
    Svg,
    Png,
}

/// The image format named by `out`'s extension.
fn format_of(out: &Path) -> Result<Format> {
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "svg" => Ok(Format::Svg),
        "png" => Ok(Format::Png),
        _ => Err(Error::Usage(format!(
            "cannot tell the image format of `{}`: use a .svg or .png file name",
            out.display()
        ))),
    }
}

/// Register a sans-serif TrueType font for plot text, once: `ACTFORGE_FONT`,
/// else common system locations. False when none was found (draw no text).
pub(crate) fn ensure_font() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let mut candidates: Vec<String> = std::env::var("ACTFORGE_FONT").into_iter().collect();
        candidates.extend(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                "/Library/Fonts/Arial.ttf",
                "/System/Library/Fonts/Supplemental/Arial.ttf",
                "C:\\Windows\\Fonts\\arial.ttf",
            ]
            .map(String::from),
        );
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A white square with one red dot.
    struct Dot;

    impl Picture for Dot {
        fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> DrawResult
        where
            DB::ErrorType: 'static,
        {
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            root.draw_pixel((1, 1), &RED).map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())
        }
    }

    #[test]
    fn the_extension_picks_the_backend() {
        let dir = std::env::temp_dir().join(format!("actforge-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        to_file(&Dot, (4, 4), &dir.join("a.svg")).unwrap();
        to_file(&Dot, (4, 4), &dir.join("a.PNG")).unwrap();
        let svg = std::fs::read_to_string(dir.join("a.svg")).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        let png = std::fs::read(dir.join("a.PNG")).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        let e = to_file(&Dot, (4, 4), &dir.join("a.jpg")).unwrap_err();
        assert!(
            matches!(e, Error::Usage(ref m) if m.contains("a.jpg") && m.contains(".svg or .png")),
            "{e}"
        );
        assert!(!dir.join("a.jpg").exists());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(to_svg(&Dot, (4, 4), "dot").unwrap().starts_with("<svg"));
    }
}
