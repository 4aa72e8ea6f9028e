//! The browser's entry points (wasm-bindgen). Thin on purpose: loading a bundle, choosing the
//! backend, and turning [`crate::generate`]'s output into JavaScript values. No model code.
//!
//! ```js
//! const model = await TextToImage.load(bytes, "webgpu"); // or "cpu"
//! const out = await model.generate("a small red bird", 7n);
//! // {images: [{label, width, height, rgba, ms, attention}], unknownWords, truncatedWords, ms, backend}
//! // attention (AttnGAN's 128 and 256 px images; [] otherwise): one entry per word the model
//! // read, [{word, segment, width, height, values: Float32Array}], segment indexing captionWords
//! model.captionWords("a red zzyzx bird"); // [{text: "a", kind: "word"}, {text: " ", kind: "separator"}, …]
//! ```

use burn::prelude::*;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::bundle::{GanBundle, load_gan};
use crate::generate::{
    AttendedWord, AttentionMaps, CaptionReport, rgb_bytes_from_data, rgba_from_rgb, word_attention,
};
use crate::vocab::MappedWord;

/// A loaded text-to-image model on one backend.
#[wasm_bindgen]
pub struct TextToImage {
    bundle: GanBundle,
    device: Device,
    backend: &'static str,
}

/// What [`TextToImage::generate`] returns to JavaScript: one image per stage of the model,
/// smallest first.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Generated {
    images: Vec<Image>,
    unknown_words: Vec<String>,
    /// `[{word, readAs}]`: unknown words read as a known word of the same meaning.
    mapped_words: Vec<MappedWord>,
    truncated_words: usize,
    ms: f64,
    backend: &'static str,
}

/// One image of [`Generated`].
#[derive(Serialize)]
struct Image {
    label: String,
    width: usize,
    height: usize,
    /// Row-major RGBA bytes.
    #[serde(with = "serde_bytes_as_array")]
    rgba: Vec<u8>,
    /// Milliseconds this stage took, read-back included.
    ms: f64,
}

/// serde-wasm-bindgen writes `Vec<u8>` as an array of numbers; as bytes it becomes a
/// `Uint8Array`, which the page hands to `ImageData` without copying element by element.
mod serde_bytes_as_array {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn error(message: impl std::fmt::Display) -> JsError {
    JsError::new(&message.to_string())
}

#[wasm_bindgen]
impl TextToImage {
    /// Loads a GAN-INT-CLS, StackGAN or AttnGAN bundle's bytes on `backend`: `"cpu"` (burn's
    /// flex backend) or `"webgpu"` (needs the WebGPU build; fails when the browser has no
    /// adapter).
    pub async fn load(bytes: Vec<u8>, backend: String) -> Result<TextToImage, JsError> {
        let (device, backend) = match backend.as_str() {
            "cpu" => (Device::flex(), "cpu"),
            "webgpu" => (webgpu_device().await?, "webgpu"),
            other => {
                return Err(error(format!(
                    "unknown backend {other:?}: use cpu or webgpu"
                )));
            }
        };
        let bundle = load_gan(&bytes, &device).map_err(error)?;
        Ok(TextToImage {
            bundle,
            device,
            backend,
        })
    }

    /// The model family: `GAN-INT-CLS`, `StackGAN` or `AttnGAN`.
    #[wasm_bindgen(getter)]
    pub fn family(&self) -> String {
        self.bundle.family().to_string()
    }

    /// Which backend runs the model: `cpu` or `webgpu`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.to_string()
    }

    /// The words of `caption` the model does not know (to mark them while typing).
    #[wasm_bindgen(js_name = unknownWords)]
    pub fn unknown_words(&self, caption: &str) -> Vec<String> {
        self.bundle.vocabulary().read(caption).unknown_words
    }

    /// The whole caption as the model's tokenizer cuts it: `[{text, kind, readAs?}]` in order,
    /// the texts concatenating to `caption`; `kind` is `word` (read), `mapped` (an unknown word
    /// read as the known word `readAs`: "beak" as "bill"), `unknown` (left out), `truncated`
    /// (beyond the 18 words the model reads) or `separator`.
    #[wasm_bindgen(js_name = captionWords)]
    pub fn caption_words(&self, caption: &str) -> Result<JsValue, JsError> {
        serde_wasm_bindgen::to_value(&self.bundle.vocabulary().segments(caption)).map_err(error)
    }

    /// Draws `caption` with `seed`; with `other` and `mix` in [0, 1], draws the interpolated
    /// embedding `(1 - mix) caption + mix other` (GAN-INT; AttnGAN attends over `caption`'s
    /// words). Each image carries the word attention that drew it (see the module doc).
    pub async fn generate(
        &self,
        caption: String,
        seed: u64,
        other: Option<String>,
        mix: Option<f32>,
    ) -> Result<JsValue, JsError> {
        let start = now_ms();
        let pair = other.as_deref().map(|o| (o, mix.unwrap_or(0.5)));
        let (text, reports) = self
            .bundle
            .caption_embedding(&caption, pair, &self.device)
            .map_err(error)?;
        // One stage at a time, each read back before the next starts: `ms` of an image is
        // what its stage took.
        let inputs = self
            .bundle
            .stage_inputs(text, &[seed], &self.device)
            .map_err(error)?;
        let mut images = Vec::new();
        let mut attention = Vec::new();
        let mut previous = None;
        for index in 0..self.bundle.stage_count() {
            let stage_start = now_ms();
            let stage = self
                .bundle
                .stage(index, &inputs, previous.as_ref())
                .map_err(error)?;
            let dims = stage.images.dims();
            let data = stage
                .images
                .clone()
                .into_data_async()
                .await
                .map_err(error)?;
            let rgb = rgb_bytes_from_data(data, dims)
                .map_err(error)?
                .pixels
                .into_iter()
                .next()
                .ok_or_else(|| error(format!("{} drew no image", stage.label)))?;
            let words = match stage.attention.clone() {
                Some(maps) => {
                    let maps_dims = maps.dims();
                    let data = maps.into_data_async().await.map_err(error)?;
                    let maps =
                        AttentionMaps::from_data(index, data, maps_dims, 0).map_err(error)?;
                    word_attention(self.bundle.vocabulary(), &caption, &[maps])
                }
                None => Vec::new(),
            };
            attention.push(attention_js(&words)?);
            images.push(Image {
                label: stage.label.clone(),
                width: dims[3],
                height: dims[2],
                rgba: rgba_from_rgb(&rgb),
                ms: now_ms() - stage_start,
            });
            previous = Some(stage);
        }
        let CaptionReport {
            unknown_words,
            mapped_words,
            truncated_words,
        } = reports.into_iter().next().unwrap_or(CaptionReport {
            unknown_words: Vec::new(),
            mapped_words: Vec::new(),
            truncated_words: 0,
        });
        let out = Generated {
            images,
            unknown_words,
            mapped_words,
            truncated_words,
            ms: now_ms() - start,
            backend: self.backend,
        };
        let value = serde_wasm_bindgen::to_value(&out).map_err(error)?;
        // serde writes `Vec<f32>` as an array of numbers: the maps go in as Float32Arrays.
        let images =
            js_sys::Reflect::get(&value, &JsValue::from_str("images")).map_err(js_error)?;
        for (index, maps) in attention.iter().enumerate() {
            let image = js_sys::Reflect::get_u32(&images, index as u32).map_err(js_error)?;
            set(&image, "attention", maps)?;
        }
        Ok(value)
    }
}

/// `[{word, segment, width, height, values}]`: one stage's map of each word the model read
/// (`values` a `Float32Array` of `width * height` weights, row-major; `segment` the word's
/// index in `captionWords`). Words without a map are left out.
fn attention_js(words: &[AttendedWord]) -> Result<js_sys::Array, JsError> {
    let out = js_sys::Array::new();
    for word in words {
        let Some(map) = word.maps.as_ref().and_then(|maps| maps.first()) else {
            continue;
        };
        let entry: JsValue = js_sys::Object::new().into();
        set(&entry, "word", &JsValue::from_str(&word.word))?;
        set(&entry, "segment", &JsValue::from(word.segment as u32))?;
        set(&entry, "width", &JsValue::from(map.size as u32))?;
        set(&entry, "height", &JsValue::from(map.size as u32))?;
        set(
            &entry,
            "values",
            &js_sys::Float32Array::from(map.values.as_slice()).into(),
        )?;
        out.push(&entry);
    }
    Ok(out)
}

fn set(target: &JsValue, key: &str, value: &JsValue) -> Result<(), JsError> {
    js_sys::Reflect::set(target, &JsValue::from_str(key), value)
        .map(|_| ())
        .map_err(js_error)
}

fn js_error(value: JsValue) -> JsError {
    error(format!("{value:?}"))
}

#[cfg(feature = "wgpu")]
async fn webgpu_device() -> Result<Device, JsError> {
    Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| error(format!("WebGPU is not available: {e}")))
}

#[cfg(not(feature = "wgpu"))]
async fn webgpu_device() -> Result<Device, JsError> {
    Err(error(
        "this is the CPU build of t2i: load the WebGPU build for backend \"webgpu\"",
    ))
}
