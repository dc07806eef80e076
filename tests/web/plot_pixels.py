"""What a plot drew, read back from its canvas: the pixels of a colour inside the plot area."""

from __future__ import annotations

COUNT_COLOUR = """([el, rgb]) => {
  const u = el.uplot, b = u.bbox;
  const px = u.ctx.getImageData(b.left, b.top, b.width, b.height).data;
  let n = 0;
  const over = (c, a) => c * a / 255 + 255 * (1 - a / 255);  // the canvas is transparent over a white page
  for (let i = 0; i < px.length; i += 4)
    if (px[i + 3] > 0 && [0, 1, 2].every((k) => Math.abs(over(px[i + k], px[i + 3]) - rgb[k]) < 12)) n++;
  return n;
}"""


def pixels_of(page: object, selector: str, rgb: tuple[int, int, int]) -> int:
    """How many pixels of about `rgb` (as seen on the white page) the uPlot plot in `selector` has
    inside its plot area."""
    element = page.locator(selector)  # type: ignore[attr-defined]
    element.wait_for()
    page.wait_for_function("s => document.querySelector(s).uplot !== undefined", arg=selector)  # type: ignore[attr-defined]
    return int(element.evaluate("(el, rgb) => (" + COUNT_COLOUR + ")([el, rgb])", list(rgb)))
