// Digital Matter Oyster GPS tracker (location tracker), written for pilotlab from Digital
// Matter's published Oyster LoRaWAN payload format, fPort 1 position record (little-endian):
//   bytes 0-3  latitude, int32, 1e-7 °
//   bytes 4-7  longitude, int32, 1e-7 °
//   byte  8    bit 0 in trip, bit 1 fix failed, bits 7-2 heading × 5.625 °
//   byte  9    speed, km/h
//   byte 10    battery, × 0.025 V
// A failed fix still reports the last position, but as `cached`, with a warning.
function decodeUplink(input) {
  var b = input.bytes;
  if (input.fPort !== 1) {
    return { warnings: ["unknown FPort"] };
  }
  var view = new DataView(new Uint8Array(b).buffer);
  var position = {
    latitudeDeg: view.getInt32(0, true) / 1e7,
    longitudeDeg: view.getInt32(4, true) / 1e7,
    headingDeg: (b[8] >> 2) * 5.625,
    speedKmph: b[9]
  };
  var data = {
    type: "position",
    inTrip: (b[8] & 0x01) !== 0,
    fixFailed: (b[8] & 0x02) !== 0,
    batV: b[10] * 0.025,
    manDown: null
  };
  var warnings = [];
  if (data.fixFailed) {
    data.cached = position;
    warnings.push("fix failed");
  } else {
    Object.keys(position).forEach(function (key) { data[key] = position[key]; });
  }
  return { data: data, warnings: warnings };
}
