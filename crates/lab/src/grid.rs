//! A grid of small images, each with a caption under it, as a [`Chart`] (`lenet5 test --mistakes`: the
//! test digits the network got most wrong, fastai's top losses).

use crate::chart::{Chart, drawing_error};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One image: `side`×`side` pixels of `channels` (1 or 3) bytes each, row-major, channels last.
pub struct Cell {
    pub side: u32,
    pub channels: u32,
    pub pixels: Vec<u8>,
    pub caption: String,
}

/// Cells in rows of `columns`, each pixel drawn as a `scale`×`scale` square.
pub struct ImageGrid {
    pub title: String,
    pub cells: Vec<Cell>,
    pub columns: u32,
    pub scale: u32,
}

const TITLE: u32 = 34;
const CAPTION: u32 = 20;
const GAP: u32 = 10;

impl ImageGrid {
    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        let (w, h) = self.cell_size();
        let rows = (self.cells.len() as u32)
            .div_ceil(self.columns.max(1))
            .max(1);
        (GAP + self.columns.max(1) * w, TITLE + rows * h)
    }

    fn cell_size(&self) -> (u32, u32) {
        let side = self.cells.iter().map(|c| c.side).max().unwrap_or(28) * self.scale;
        ((side + GAP).max(150), side + CAPTION + GAP)
    }
}

impl Chart for ImageGrid {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let err = drawing_error::<DB>;
        root.fill(&WHITE).map_err(err)?;
        let title = ("sans-serif", 18).into_font().color(&BLACK);
        root.draw_text(&self.title, &title, (GAP as i32, 8))
            .map_err(err)?;
        let (w, h) = self.cell_size();
        let caption = ("sans-serif", 13).into_font().color(&BLACK);
        for (i, cell) in self.cells.iter().enumerate() {
            let (col, row) = (
                i as u32 % self.columns.max(1),
                i as u32 / self.columns.max(1),
            );
            let origin = ((GAP + col * w) as i32, (TITLE + row * h) as i32);
            for (p, px) in cell
                .pixels
                .chunks(cell.channels.max(1) as usize)
                .enumerate()
            {
                let color = match px {
                    [r, g, b] => RGBColor(*r, *g, *b),
                    [v, ..] => RGBColor(*v, *v, *v),
                    [] => continue,
                };
                let (x, y) = (p as u32 % cell.side, p as u32 / cell.side);
                let at = |d: u32| {
                    (
                        origin.0 + (x * self.scale + d % self.scale) as i32,
                        origin.1 + (y * self.scale + d / self.scale) as i32,
                    )
                };
                for d in 0..self.scale * self.scale {
                    root.draw_pixel(at(d), &color).map_err(err)?;
                }
            }
            let below = origin.1 + (cell.side * self.scale) as i32 + 3;
            root.draw_text(&cell.caption, &caption, (origin.0, below))
                .map_err(err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pixel_is_drawn_as_a_square_where_its_cell_is() {
        let cell = |v: u8| Cell {
            side: 2,
            channels: 1,
            pixels: vec![0, v, v, 0],
            caption: "3→8 (97%)".into(),
        };
        let grid = ImageGrid {
            title: "worst".into(),
            cells: vec![cell(255), cell(128), cell(64)],
            columns: 2,
            scale: 4,
        };
        let (w, h) = grid.size();
        assert_eq!((w, h), (10 + 2 * 150, 34 + 2 * (8 + 20 + 10)));
        let png = crate::chart::render_png(&grid, (w, h)).unwrap();
        let image = image::load_from_memory(&png).unwrap().to_rgb8();
        // Cell 0's top-left pixel is black, its top-right white (255), at scale 4.
        assert_eq!(image.get_pixel(10 + 1, 34 + 1).0, [0, 0, 0]);
        assert_eq!(image.get_pixel(10 + 4 + 3, 34 + 3).0, [255, 255, 255]);
        // Cell 1 is in the second column, cell 2 on the second row.
        assert_eq!(image.get_pixel(10 + 150 + 5, 34 + 1).0, [128, 128, 128]);
        assert_eq!(image.get_pixel(10 + 5, 34 + 38 + 1).0, [64, 64, 64]);
    }
}
