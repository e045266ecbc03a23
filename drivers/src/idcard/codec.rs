//! The frame codec of the common 二代证 (second-generation resident ID card) SAM reader protocol
//! (GA 467 style): `AA AA AA 96 69`, a big-endian length, then command and parameter (requests)
//! or three status bytes (answers), data, and an XOR checksum over everything after the preamble.
//! Also the 256-byte UCS-2LE text block of a card.

use std::fmt;

/// Every frame starts with these five bytes.
pub const PREAMBLE: [u8; 5] = [0xAA, 0xAA, 0xAA, 0x96, 0x69];

/// The largest length field we accept. The longest answer of the protocol (base info with
/// fingerprint, `30 10`) is about 2,320 bytes; anything far above that is line noise or a
/// corrupted length, and waiting for 64 KiB that never come would stall the reader.
pub const MAX_FRAME_LEN: usize = 4096;

/// Commands as (command, parameter).
pub const FIND_CARD: (u8, u8) = (0x20, 0x01);
pub const SELECT_CARD: (u8, u8) = (0x20, 0x02);
pub const READ_BASE_INFO: (u8, u8) = (0x30, 0x01);
pub const SAM_STATUS: (u8, u8) = (0x11, 0xFF);

/// Status bytes (SW3) of answers.
pub const STATUS_OK: u8 = 0x90;
pub const STATUS_CARD_FOUND: u8 = 0x9F;
pub const STATUS_NO_CARD: u8 = 0x80;
pub const STATUS_SELECT_FAILED: u8 = 0x81;
pub const STATUS_READ_FAILED: u8 = 0x41;
pub const STATUS_BAD_CHECKSUM: u8 = 0x10;

/// Size of the text block and of the (WLT-compressed) photo block of a card.
pub const TEXT_LEN: usize = 256;
pub const PHOTO_LEN: usize = 1024;

/// What the reader's status byte means, for log lines and errors.
pub fn status_text(status: u8) -> &'static str {
    match status {
        0x90 => "操作成功",
        0x9F => "寻找证/卡成功",
        0x80 => "寻找证/卡失败（无卡）",
        0x81 => "选取证/卡失败",
        0x41 => "读证/卡操作失败",
        0x10 => "接收业务终端数据的校验和错",
        0x11 => "接收业务终端数据的长度错",
        0x21 => "接收业务终端的命令错误",
        0x23 => "越权操作",
        0x24 => "无法识别的错误",
        0x31 => "证/卡认证机具失败",
        0x32 => "机具认证证/卡失败",
        0x33 => "信息验证错误",
        0x40 => "无法识别的卡类型",
        0x47 => "机具认证 SAM 失败",
        0x60 => "SAM 自检失败",
        0x66 => "SAM 未经授权",
        0x91 => "证/卡中此项无内容",
        _ => "未知状态",
    }
}

/// XOR of all bytes.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let len = (body.len() + 1) as u16;
    let mut out = Vec::with_capacity(PREAMBLE.len() + 2 + body.len() + 1);
    out.extend_from_slice(&PREAMBLE);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    let sum = checksum(&out[PREAMBLE.len()..]);
    out.push(sum);
    out
}

/// A request frame: command, parameter, data.
pub fn encode_request(command: (u8, u8), data: &[u8]) -> Vec<u8> {
    let mut body = vec![command.0, command.1];
    body.extend_from_slice(data);
    frame(&body)
}

/// An answer frame: status `00 00 SW3`, data. Used by the simulator and the tests.
pub fn encode_response(status: u8, data: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x00, status];
    body.extend_from_slice(data);
    frame(&body)
}

/// What the decoder found next in the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A complete frame with a good checksum: the bytes between the length and the checksum.
    Frame(Vec<u8>),
    /// Bytes before a preamble that belong to no frame (line noise, a late answer's tail).
    Garbage(usize),
    /// A complete frame whose checksum did not match; its preamble was dropped and the decoder
    /// resynchronises on the next one (a corrupted length must not swallow a good frame).
    BadChecksum { expected: u8, found: u8 },
    /// A length field above [`MAX_FRAME_LEN`] or below the minimum; dropped the same way.
    BadLength(usize),
    /// Nothing complete yet.
    NeedMore,
}

/// A streaming decoder: push bytes as they arrive, take frames out.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received that did not form a frame yet (a truncated frame when the line goes quiet).
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    pub fn clear(&mut self) {
        self.buffer.clear();
    }

    pub fn next_frame(&mut self) -> Decoded {
        let start = find(&self.buffer, &PREAMBLE);
        match start {
            None => {
                // Keep a possible partial preamble at the end; everything before it is garbage.
                let keep = partial_preamble_suffix(&self.buffer);
                let garbage = self.buffer.len() - keep;
                if garbage > 0 {
                    self.buffer.drain(..garbage);
                    return Decoded::Garbage(garbage);
                }
                return Decoded::NeedMore;
            }
            Some(start) if start > 0 => {
                self.buffer.drain(..start);
                return Decoded::Garbage(start);
            }
            Some(_) => {}
        }
        let header = PREAMBLE.len() + 2;
        if self.buffer.len() < header {
            return Decoded::NeedMore;
        }
        let len = u16::from_be_bytes([self.buffer[5], self.buffer[6]]) as usize;
        // The shortest frame is a request: command, parameter, checksum.
        if !(3..=MAX_FRAME_LEN).contains(&len) {
            self.buffer.drain(..PREAMBLE.len());
            return Decoded::BadLength(len);
        }
        if self.buffer.len() < header + len {
            return Decoded::NeedMore;
        }
        let expected = checksum(&self.buffer[PREAMBLE.len()..header + len - 1]);
        let found = self.buffer[header + len - 1];
        if expected != found {
            self.buffer.drain(..PREAMBLE.len());
            return Decoded::BadChecksum { expected, found };
        }
        let body = self.buffer[header..header + len - 1].to_vec();
        self.buffer.drain(..header + len);
        Decoded::Frame(body)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn partial_preamble_suffix(buffer: &[u8]) -> usize {
    (1..PREAMBLE.len())
        .rev()
        .find(|&n| buffer.len() >= n && buffer[buffer.len() - n..] == PREAMBLE[..n])
        .unwrap_or(0)
}

/// An answer split into its status and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u8,
    pub data: Vec<u8>,
}

impl Response {
    /// Reads an answer body (`SW1 SW2 SW3 data…`); `None` when it is too short to be one.
    pub fn parse(body: &[u8]) -> Option<Response> {
        if body.len() < 3 {
            return None;
        }
        Some(Response {
            status: body[2],
            data: body[3..].to_vec(),
        })
    }
}

/// The text fields of a card. `Debug` masks the ID number, so the struct can be logged.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct IdCardText {
    pub name: String,
    /// GB/T 2261.1 code: 1 male, 2 female.
    pub sex_code: String,
    /// GB 3304 code, 01 汉 … 56 基诺.
    pub ethnicity_code: String,
    /// YYYYMMDD.
    pub birth_date: String,
    pub address: String,
    pub id_number: String,
    pub issuer: String,
    /// YYYYMMDD.
    pub valid_from: String,
    /// YYYYMMDD, or 长期 for cards that never expire.
    pub valid_until: String,
}

impl fmt::Debug for IdCardText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdCardText")
            .field("name", &self.name)
            .field(
                "id_number",
                &witness_schemas::gate::mask_id_number(&self.id_number),
            )
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

/// Field widths in UCS-2 characters, in the order of the text block (256 bytes in all, the
/// last 18 characters reserved).
const FIELDS: [usize; 10] = [15, 1, 2, 8, 35, 18, 15, 8, 8, 18];

impl IdCardText {
    /// Decodes the 256-byte UCS-2LE text block; fields are padded with spaces.
    pub fn decode(block: &[u8]) -> Option<IdCardText> {
        if block.len() < TEXT_LEN {
            return None;
        }
        let units: Vec<u16> = block[..TEXT_LEN]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let mut fields = Vec::with_capacity(FIELDS.len());
        let mut at = 0;
        for width in FIELDS {
            let text = String::from_utf16_lossy(&units[at..at + width]);
            fields.push(text.trim_end_matches([' ', '\0']).trim_start().to_string());
            at += width;
        }
        let mut fields = fields.into_iter();
        let mut next = || fields.next().unwrap_or_default();
        Some(IdCardText {
            name: next(),
            sex_code: next(),
            ethnicity_code: next(),
            birth_date: next(),
            address: next(),
            id_number: next(),
            issuer: next(),
            valid_from: next(),
            valid_until: next(),
        })
    }

    /// Encodes the text block the way cards carry it (for the simulator and tests).
    pub fn encode(&self) -> [u8; TEXT_LEN] {
        let values = [
            &self.name,
            &self.sex_code,
            &self.ethnicity_code,
            &self.birth_date,
            &self.address,
            &self.id_number,
            &self.issuer,
            &self.valid_from,
            &self.valid_until,
            &String::new(),
        ];
        let mut units = Vec::with_capacity(TEXT_LEN / 2);
        for (value, width) in values.into_iter().zip(FIELDS) {
            let mut field: Vec<u16> = value.encode_utf16().take(width).collect();
            field.resize(width, u16::from(b' '));
            units.extend(field);
        }
        let mut block = [0u8; TEXT_LEN];
        for (i, unit) in units.iter().enumerate() {
            block[2 * i..2 * i + 2].copy_from_slice(&unit.to_le_bytes());
        }
        block
    }

    pub fn sex(&self) -> &'static str {
        match self.sex_code.as_str() {
            "1" => "男",
            "2" => "女",
            "9" => "未说明",
            _ => "未知",
        }
    }

    /// The ethnicity's name from its GB 3304 code.
    pub fn ethnicity(&self) -> &'static str {
        self.ethnicity_code
            .parse::<usize>()
            .ok()
            .and_then(|code| ETHNICITIES.get(code.wrapping_sub(1)))
            .copied()
            .unwrap_or("其他")
    }
}

/// GB 3304-91 names, code 01 first.
const ETHNICITIES: [&str; 56] = [
    "汉",
    "蒙古",
    "回",
    "藏",
    "维吾尔",
    "苗",
    "彝",
    "壮",
    "布依",
    "朝鲜",
    "满",
    "侗",
    "瑶",
    "白",
    "土家",
    "哈尼",
    "哈萨克",
    "傣",
    "黎",
    "傈僳",
    "佤",
    "畲",
    "高山",
    "拉祜",
    "水",
    "东乡",
    "纳西",
    "景颇",
    "柯尔克孜",
    "土",
    "达斡尔",
    "仫佬",
    "羌",
    "布朗",
    "撒拉",
    "毛南",
    "仡佬",
    "锡伯",
    "阿昌",
    "普米",
    "塔吉克",
    "怒",
    "乌孜别克",
    "俄罗斯",
    "鄂温克",
    "德昂",
    "保安",
    "裕固",
    "京",
    "塔塔尔",
    "独龙",
    "鄂伦春",
    "赫哲",
    "门巴",
    "珞巴",
    "基诺",
];

/// The data of a `30 01` answer: text length, photo length (both big-endian), text, photo.
pub fn parse_base_info(data: &[u8]) -> Option<(IdCardText, Vec<u8>)> {
    if data.len() < 4 {
        return None;
    }
    let text_len = u16::from_be_bytes([data[0], data[1]]) as usize;
    let photo_len = u16::from_be_bytes([data[2], data[3]]) as usize;
    if text_len < TEXT_LEN || data.len() < 4 + text_len + photo_len {
        return None;
    }
    let text = IdCardText::decode(&data[4..4 + text_len])?;
    let photo = data[4 + text_len..4 + text_len + photo_len].to_vec();
    Some((text, photo))
}

/// Builds the data of a `30 01` answer (simulator, tests).
pub fn encode_base_info(text: &IdCardText, photo: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(4 + TEXT_LEN + photo.len());
    data.extend_from_slice(&(TEXT_LEN as u16).to_be_bytes());
    data.extend_from_slice(&(photo.len() as u16).to_be_bytes());
    data.extend_from_slice(&text.encode());
    data.extend_from_slice(photo);
    data
}
