// Milesight AT101 GPS tracker (location tracker), written for pilotlab from Milesight's published
// uplink format: [channel id][channel type][value], little-endian.
//   0xFF 0x01  IPSO version      1 byte: high nibble major, low nibble minor → "vM.m"
//   0xFF 0x09  hardware version  2 bytes: major (hex digits), minor = high nibble of byte 2
//   0xFF 0x0A  firmware version  2 bytes: major, minor (hex digits)
//   0xFF 0x0B  device status     1 byte: the device is on
//   0xFF 0x16  serial number     8 bytes, hex
//   0x01 0x75  battery           uint8, %
//   0x03 0x67  temperature       int16, 0.1 °C
//   0x04 0x88  location          int32 latitude, int32 longitude (1e-6 °), status byte:
//              low nibble motion (unknown, start, moving, stop), high nibble geofence (inside,
//              outside, unset, unknown)
function decodeUplink(input) {
  var bytes = input.bytes;
  var data = {};
  for (var i = 0; i < bytes.length;) {
    var id = bytes[i++], type = bytes[i++];
    var key = hex(id) + hex(type);
    switch (key) {
      case "ff01": data.ipso_version = "v" + (bytes[i] >> 4) + "." + (bytes[i] & 0x0f); i += 1; break;
      case "ff09": data.hardware_version = "v" + bytes[i].toString(16) + "." + (bytes[i + 1] >> 4); i += 2; break;
      case "ff0a": data.firmware_version = "v" + bytes[i].toString(16) + "." + bytes[i + 1].toString(16); i += 2; break;
      case "ff0b": data.device_status = "on"; i += 1; break;
      case "ff16": data.sn = bytes.slice(i, i + 8).map(hex).join(""); i += 8; break;
      case "0175": data.battery = bytes[i]; i += 1; break;
      case "0367": data.temperature = int(bytes, i, 2) / 10; i += 2; break;
      case "0488":
        data.latitude = int(bytes, i, 4) / 1e6;
        data.longitude = int(bytes, i + 4, 4) / 1e6;
        data.motion_status = ["unknown", "start", "moving", "stop"][bytes[i + 8] & 0x0f] || "unknown";
        data.geofence_status = ["inside", "outside", "unset", "unknown"][bytes[i + 8] >> 4] || "unknown";
        i += 9;
        break;
      default:
        return { errors: ["unknown channel " + key] };
    }
  }
  return { data: data };
}

function hex(b) { return ("0" + b.toString(16)).slice(-2); }

// a little-endian signed integer of `size` bytes, through a typed array's view
function int(bytes, at, size) {
  var view = new DataView(Uint8Array.from(bytes.slice(at, at + size)).buffer);
  return size === 2 ? view.getInt16(0, true) : view.getInt32(0, true);
}
