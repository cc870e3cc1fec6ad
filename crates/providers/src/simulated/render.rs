//! Deterministic pictures for the simulated provider: a PNG of the requested size and a small
//! looping animated GIF, both drawn from a seed so the same prompt gives the same file.

use std::borrow::Cow;

use super::Rng;

/// Largest side of a simulated image.
pub const MAX_SIDE: u32 = 4096;
/// Width of simulated videos (their height follows the requested aspect ratio).
const VIDEO_WIDTH: u32 = 192;
const VIDEO_FRAMES: u32 = 12;

fn palette(rng: &mut Rng) -> [[u8; 3]; 4] {
    let mut colours = [[0u8; 3]; 4];
    for colour in &mut colours {
        for channel in colour.iter_mut() {
            *channel = 40 + (rng.next() % 200) as u8;
        }
    }
    colours
}

fn mix(a: [u8; 3], b: [u8; 3], t: f64) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    [0, 1, 2].map(|i| (a[i] as f64 + (b[i] as f64 - a[i] as f64) * t).round() as u8)
}

struct Disc {
    x: f64,
    y: f64,
    r: f64,
    colour: [u8; 3],
}

/// A PNG of `width`×`height` (each clamped to 1..=4096): a gradient with a few discs.
pub fn png(seed: u64, width: u32, height: u32) -> Result<Vec<u8>, String> {
    let width = width.clamp(1, MAX_SIDE);
    let height = height.clamp(1, MAX_SIDE);
    let mut rng = Rng::new(seed);
    let colours = palette(&mut rng);
    let discs: Vec<Disc> = (0..3 + rng.next() % 3)
        .map(|i| Disc {
            x: rng.unit() * width as f64,
            y: rng.unit() * height as f64,
            r: (0.08 + rng.unit() * 0.2) * width.min(height) as f64,
            colour: colours[(2 + i as usize) % 4],
        })
        .collect();
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        let row = mix(colours[0], colours[1], y as f64 / height.max(2) as f64);
        for x in 0..width {
            let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
            let pixel = discs
                .iter()
                .rev()
                .find(|d| (fx - d.x).powi(2) + (fy - d.y).powi(2) <= d.r * d.r)
                .map_or(row, |d| d.colour);
            pixels.extend_from_slice(&pixel);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// A looping animated GIF with the aspect ratio of `width`×`height`: a disc crossing a
/// striped background, one loop per second or so.
pub fn gif(seed: u64, width: u32, height: u32) -> Result<Vec<u8>, String> {
    let (w, h) = if width == 0 || height == 0 {
        (VIDEO_WIDTH, VIDEO_WIDTH * 9 / 16)
    } else {
        let h =
            (VIDEO_WIDTH as u64 * height as u64 / width as u64).clamp(16, 4 * VIDEO_WIDTH as u64);
        (VIDEO_WIDTH, h as u32)
    };
    let mut rng = Rng::new(seed);
    let colours = palette(&mut rng);
    // Palette: 8 background shades, then the disc colour.
    let mut table = Vec::with_capacity(16 * 3);
    for i in 0..8 {
        table.extend_from_slice(&mix(colours[0], colours[1], i as f64 / 7.0));
    }
    table.extend_from_slice(&colours[2]);
    table.extend_from_slice(&colours[3]);
    table.resize(16 * 3, 0);
    let mut out = Vec::new();
    {
        let mut encoder =
            gif::Encoder::new(&mut out, w as u16, h as u16, &table).map_err(|e| e.to_string())?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .map_err(|e| e.to_string())?;
        let radius = h as f64 * (0.15 + rng.unit() * 0.15);
        let cy = h as f64 * (0.3 + rng.unit() * 0.4);
        let mut indices = vec![0u8; (w * h) as usize];
        for frame in 0..VIDEO_FRAMES {
            let t = frame as f64 / VIDEO_FRAMES as f64;
            let cx = radius
                + (w as f64 - 2.0 * radius) * (0.5 - 0.5 * (t * std::f64::consts::TAU).cos());
            for y in 0..h {
                let shade = ((y * 8 / h) as u8).min(7);
                for x in 0..w {
                    let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
                    let inside = (fx - cx).powi(2) + (fy - cy).powi(2) <= radius * radius;
                    indices[(y * w + x) as usize] = if inside { 8 } else { shade };
                }
            }
            let frame = gif::Frame {
                width: w as u16,
                height: h as u16,
                delay: 8,
                buffer: Cow::Borrowed(&indices),
                ..gif::Frame::default()
            };
            encoder.write_frame(&frame).map_err(|e| e.to_string())?;
        }
        encoder.into_inner().map_err(|e| e.to_string())?;
    }
    Ok(out)
}
