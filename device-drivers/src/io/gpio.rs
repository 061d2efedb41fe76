//! Lane I/O on a Linux GPIO character device (`/dev/gpiochipN`, uAPI v2 through
//! `gpiocdev`): the map's numbers are the chip's line offsets. Each mapped line is
//! requested on its own (inputs as inputs, outputs as outputs at their inactive level
//! until the first scan); offsets the map does not use are left alone. Polarity is the
//! map's business ([`PinRef::active_low`]), so lines are requested active-high.
//!
//! The pins act on the hardware directly, so the process image is [`super::DirectPins`].

use super::map::{IoMap, PinRef};
use super::scan::ScanLane;
use super::{IoError, ProcessImage};
use crate::devices::{DeviceFault, DeviceFuture, FaultKind};
use embedded_hal::digital::{ErrorKind, ErrorType, InputPin, OutputPin, PinState};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// An input pin of the lane: a requested GPIO line, or a number the map does not use.
pub enum GpioInput {
    /// A requested input line.
    Line(gpiocdev_embedded_hal::InputPin),
    /// Not wired (never read by [`ScanLane`]).
    Unused(u32),
}

/// An output pin of the lane: a requested GPIO line, or a number the map does not use.
pub enum GpioOutput {
    /// A requested output line.
    Line(gpiocdev_embedded_hal::OutputPin),
    /// Not wired (never written by [`ScanLane`]).
    Unused(u32),
}

/// Error of a GPIO pin.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    /// The line failed (removed chip, kernel error).
    #[error("{0}")]
    Line(#[from] gpiocdev_embedded_hal::Error),
    /// The offset is not in the I/O map (a driver bug if it is ever touched).
    #[error("GPIO line {0} is not in the I/O map")]
    Unused(u32),
    /// The chip is not open (missing, or closed after a line failed).
    #[error("the GPIO chip is not open")]
    Closed,
}

impl embedded_hal::digital::Error for GpioError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl ErrorType for GpioInput {
    type Error = GpioError;
}

impl InputPin for GpioInput {
    fn is_high(&mut self) -> Result<bool, GpioError> {
        match self {
            GpioInput::Line(p) => Ok(p.is_high()?),
            GpioInput::Unused(o) => Err(GpioError::Unused(*o)),
        }
    }
    fn is_low(&mut self) -> Result<bool, GpioError> {
        self.is_high().map(|h| !h)
    }
}

impl ErrorType for GpioOutput {
    type Error = GpioError;
}

impl OutputPin for GpioOutput {
    fn set_low(&mut self) -> Result<(), GpioError> {
        match self {
            GpioOutput::Line(p) => Ok(p.set_low()?),
            GpioOutput::Unused(o) => Err(GpioError::Unused(*o)),
        }
    }
    fn set_high(&mut self) -> Result<(), GpioError> {
        match self {
            GpioOutput::Line(p) => Ok(p.set_high()?),
            GpioOutput::Unused(o) => Err(GpioError::Unused(*o)),
        }
    }
}

/// Which lines to request on the chip for a map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinePlan {
    /// Input lines as `(offset, signal)`, by offset.
    pub inputs: Vec<(u32, String)>,
    /// Output lines as `(offset, signal, level at request)`, by offset. The level is the
    /// signal's inactive one (low, or high when active-low).
    pub outputs: Vec<(u32, String, PinState)>,
    /// Input pin table size (highest input offset + 1).
    pub input_count: usize,
    /// Output pin table size (highest output offset + 1).
    pub output_count: usize,
}

/// Plans the line requests for `map` on one chip. Inputs and outputs share the chip's
/// offsets, so unlike on a Modbus module one number cannot be both an input and an output.
pub fn line_plan(map: &IoMap) -> Result<LinePlan, IoError> {
    map.validate()?;
    let mut used: BTreeMap<u16, String> = BTreeMap::new();
    let mut inputs = Vec::new();
    for (name, pin) in map.inputs.signals() {
        used.insert(pin.index, format!("inputs.{name}"));
        inputs.push((u32::from(pin.index), name));
    }
    let mut outputs = Vec::new();
    for (name, pin) in map.outputs.signals() {
        if let Some(input) = used.get(&pin.index) {
            return Err(IoError::Backend(format!(
                "GPIO line {} is used by both {input} and outputs.{name}; inputs and \
                 outputs share the chip's line offsets",
                pin.index
            )));
        }
        outputs.push((u32::from(pin.index), name, inactive(pin)));
    }
    inputs.sort();
    outputs.sort_by_key(|o| o.0);
    Ok(LinePlan {
        inputs,
        outputs,
        input_count: map.input_count(),
        output_count: map.output_count(),
    })
}

fn inactive(pin: PinRef) -> PinState {
    PinState::from(pin.active_low)
}

/// Requests the lines of `map` on `chip` and returns the pin tables for [`ScanLane`].
/// Fails, naming the chip, line and signal, if the chip is missing, has too few lines or
/// a line is busy.
pub fn open_pins(chip: &Path, map: &IoMap) -> Result<(Vec<GpioInput>, Vec<GpioOutput>), IoError> {
    let plan = line_plan(map)?;
    let c = gpiocdev::Chip::from_path(chip)
        .map_err(|e| IoError::Backend(format!("cannot open GPIO chip {}: {e}", chip.display())))?;
    let info = c
        .info()
        .map_err(|e| IoError::Backend(format!("cannot query GPIO chip {}: {e}", chip.display())))?;
    let highest = plan
        .inputs
        .iter()
        .map(|i| i.0)
        .chain(plan.outputs.iter().map(|o| o.0))
        .max()
        .unwrap_or(0);
    if highest >= info.num_lines {
        return Err(IoError::Backend(format!(
            "GPIO chip {} has {} lines, the I/O map uses line {highest}",
            chip.display(),
            info.num_lines
        )));
    }
    let line_err = |offset: u32, name: &str, e: gpiocdev_embedded_hal::Error| {
        IoError::Backend(format!(
            "cannot request GPIO line {offset} ({name}) on {}: {e}",
            chip.display()
        ))
    };
    let mut inputs: Vec<GpioInput> = (0..plan.input_count)
        .map(|o| GpioInput::Unused(o as u32))
        .collect();
    for (offset, name) in &plan.inputs {
        let p = gpiocdev_embedded_hal::InputPin::new(chip, *offset)
            .map_err(|e| line_err(*offset, name, e))?;
        inputs[*offset as usize] = GpioInput::Line(p);
    }
    let mut outputs: Vec<GpioOutput> = (0..plan.output_count)
        .map(|o| GpioOutput::Unused(o as u32))
        .collect();
    for (offset, name, level) in &plan.outputs {
        let p = gpiocdev_embedded_hal::OutputPin::new(chip, *offset, *level)
            .map_err(|e| line_err(*offset, name, e))?;
        outputs[*offset as usize] = GpioOutput::Line(p);
    }
    Ok((inputs, outputs))
}

/// A scan driver for `map` on the GPIO chip at `chip` (run it with
/// [`super::ScanLaneIo::spawn`] and [`super::DirectPins`]).
pub fn open_lane(chip: &Path, map: IoMap) -> Result<ScanLane<GpioInput, GpioOutput>, IoError> {
    let (inputs, outputs) = open_pins(chip, &map)?;
    ScanLane::new(map, inputs, outputs)
}

/// The lines of one chip as opened by [`GpioImage`], shared with its pins.
struct Lines {
    inputs: Vec<GpioInput>,
    outputs: Vec<GpioOutput>,
}

type SharedLines = Arc<Mutex<Option<Lines>>>;

fn lock_lines(m: &Mutex<Option<Lines>>) -> MutexGuard<'_, Option<Lines>> {
    // The table is replaced whole; a panic elsewhere cannot leave it half-written.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The GPIO chip of a lane, (re)opened by the scan cycle: while the chip is missing
/// (not there at start, unplugged, a line failed) every exchange fails with a
/// [`DeviceFault`] naming the chip, and the chip is requested again after a backoff
/// (100 ms doubling to 2 s), so the lane comes back by itself when the chip does.
/// The pins ([`GpioImage::input_pins`], [`GpioImage::output_pins`]) act on the lines
/// directly; the exchange only (re)opens them.
pub struct GpioImage {
    chip: PathBuf,
    map: IoMap,
    lines: SharedLines,
    retry_at: Option<Instant>,
    backoff: Duration,
    last_error: String,
}

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl fmt::Debug for GpioImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpioImage")
            .field("chip", &self.chip)
            .field("open", &self.is_open())
            .finish()
    }
}

impl GpioImage {
    /// An image for `map` on `chip`, not opened yet (the first exchange opens it).
    /// Fails only if the map cannot be laid out on one chip ([`line_plan`]).
    pub fn new(chip: impl Into<PathBuf>, map: IoMap) -> Result<GpioImage, IoError> {
        line_plan(&map)?;
        Ok(GpioImage {
            chip: chip.into(),
            map,
            lines: Arc::new(Mutex::new(None)),
            retry_at: None,
            backoff: MIN_BACKOFF,
            last_error: String::new(),
        })
    }

    /// The chip path.
    pub fn chip(&self) -> &Path {
        &self.chip
    }

    /// Whether the chip's lines are requested now.
    pub fn is_open(&self) -> bool {
        lock_lines(&self.lines).is_some()
    }

    /// One input pin per input number of the map (highest + 1).
    pub fn input_pins(&self) -> Vec<SharedGpioInput> {
        (0..self.map.input_count())
            .map(|index| SharedGpioInput {
                lines: self.lines.clone(),
                index,
            })
            .collect()
    }

    /// One output pin per output number of the map (highest + 1).
    pub fn output_pins(&self) -> Vec<SharedGpioOutput> {
        (0..self.map.output_count())
            .map(|index| SharedGpioOutput {
                lines: self.lines.clone(),
                index,
            })
            .collect()
    }

    fn open(&mut self) -> Result<(), DeviceFault> {
        if lock_lines(&self.lines).is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if let Some(at) = self.retry_at {
            if now < at {
                return Err(DeviceFault::new(
                    FaultKind::Unavailable,
                    format!(
                        "{}; next attempt in {} ms",
                        self.last_error,
                        (at - now).as_millis()
                    ),
                ));
            }
        }
        match open_pins(&self.chip, &self.map) {
            Ok((inputs, outputs)) => {
                *lock_lines(&self.lines) = Some(Lines { inputs, outputs });
                self.retry_at = None;
                self.backoff = MIN_BACKOFF;
                Ok(())
            }
            Err(e) => {
                self.last_error = e.to_string();
                self.retry_at = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                Err(DeviceFault::new(
                    FaultKind::Unavailable,
                    self.last_error.clone(),
                ))
            }
        }
    }
}

impl ProcessImage for GpioImage {
    fn read_inputs(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        let r = self.open();
        Box::pin(async move { r })
    }
    fn write_outputs(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async { Ok(()) })
    }
}

/// An input pin of a [`GpioImage`]: reads its line while the chip is open. A failed
/// line closes the chip (every pin then errs until the image reopens it).
pub struct SharedGpioInput {
    lines: SharedLines,
    index: usize,
}

/// An output pin of a [`GpioImage`]; see [`SharedGpioInput`].
pub struct SharedGpioOutput {
    lines: SharedLines,
    index: usize,
}

impl ErrorType for SharedGpioInput {
    type Error = GpioError;
}

impl ErrorType for SharedGpioOutput {
    type Error = GpioError;
}

fn with_line<T>(
    lines: &SharedLines,
    f: impl FnOnce(&mut Lines) -> Result<T, GpioError>,
) -> Result<T, GpioError> {
    let mut g = lock_lines(lines);
    let Some(l) = g.as_mut() else {
        return Err(GpioError::Closed);
    };
    let r = f(l);
    if matches!(r, Err(GpioError::Line(_))) {
        *g = None;
    }
    r
}

impl InputPin for SharedGpioInput {
    fn is_high(&mut self) -> Result<bool, GpioError> {
        let i = self.index;
        with_line(&self.lines, |l| match l.inputs.get_mut(i) {
            Some(p) => p.is_high(),
            None => Err(GpioError::Unused(i as u32)),
        })
    }
    fn is_low(&mut self) -> Result<bool, GpioError> {
        self.is_high().map(|h| !h)
    }
}

impl OutputPin for SharedGpioOutput {
    fn set_low(&mut self) -> Result<(), GpioError> {
        self.set_state(PinState::Low)
    }
    fn set_high(&mut self) -> Result<(), GpioError> {
        self.set_state(PinState::High)
    }
    fn set_state(&mut self, state: PinState) -> Result<(), GpioError> {
        let i = self.index;
        with_line(&self.lines, |l| match l.outputs.get_mut(i) {
            Some(p) => p.set_state(state),
            None => Err(GpioError::Unused(i as u32)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map for a 40-line header: inputs on 2..=17, outputs on 20..=28.
    fn header_map() -> IoMap {
        let mut m = IoMap::default();
        let shift = |p: &mut PinRef, by: u16| p.index += by;
        let i = &mut m.inputs;
        for p in [
            &mut i.entry_closed,
            &mut i.entry_open,
            &mut i.exit_closed,
            &mut i.exit_open,
            &mut i.entry_safety,
            &mut i.exit_safety,
            &mut i.entry_beam,
            &mut i.exit_beam,
            &mut i.emergency,
        ] {
            shift(p, 2);
        }
        for p in i.mantrap_beams.iter_mut() {
            shift(p, 2);
        }
        for p in [
            &mut i.occupancy,
            &mut i.tamper,
            &mut i.entry_motor_fault,
            &mut i.exit_motor_fault,
        ]
        .into_iter()
        .flatten()
        {
            shift(p, 2);
        }
        let o = &mut m.outputs;
        for p in [
            &mut o.entry_drive_open,
            &mut o.entry_lock,
            &mut o.exit_drive_open,
            &mut o.exit_lock,
            &mut o.entry_lamp_green,
            &mut o.entry_lamp_red,
            &mut o.exit_lamp_green,
            &mut o.exit_lamp_red,
        ] {
            shift(p, 20);
        }
        if let Some(b) = o.buzzer.as_mut() {
            shift(b, 20);
        }
        m
    }

    #[test]
    fn plan_requests_the_mapped_offsets_only() {
        let plan = line_plan(&header_map()).unwrap();
        let ins: Vec<u32> = plan.inputs.iter().map(|i| i.0).collect();
        assert_eq!(ins, (2..=17).collect::<Vec<u32>>());
        assert_eq!(plan.inputs[10], (12, "mantrap_beams[2]".to_string()));
        assert_eq!(plan.inputs[12], (14, "emergency".to_string()));
        let outs: Vec<u32> = plan.outputs.iter().map(|o| o.0).collect();
        assert_eq!(outs, (20..=28).collect::<Vec<u32>>());
        assert_eq!(plan.input_count, 18);
        assert_eq!(plan.output_count, 29);
        // Outputs start inactive: low for active-high signals.
        assert!(plan.outputs.iter().all(|o| o.2 == PinState::Low));
    }

    #[test]
    fn active_low_outputs_start_high() {
        let mut m = header_map();
        m.outputs.entry_lock.active_low = true;
        let plan = line_plan(&m).unwrap();
        let lock = plan.outputs.iter().find(|o| o.1 == "entry_lock").unwrap();
        assert_eq!((lock.0, lock.2), (21, PinState::High));
    }

    #[test]
    fn an_offset_used_as_input_and_output_is_refused() {
        // The reference map numbers inputs and outputs from 0 each (a Modbus module has
        // separate spaces); on one GPIO chip that is a conflict.
        let e = line_plan(&IoMap::default()).unwrap_err().to_string();
        assert!(
            e.contains("GPIO line 0")
                && e.contains("inputs.entry_closed")
                && e.contains("outputs.entry_drive_open"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_chip_is_a_clear_error() {
        let e = open_lane(Path::new("/nonexistent/gpiochip9"), header_map())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("cannot open GPIO chip /nonexistent/gpiochip9"),
            "{e}"
        );
        // Not a character device at all.
        let e = open_pins(Path::new("/dev/null"), &header_map())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/dev/null"), "{e}");
    }

    #[test]
    fn unused_pins_refuse_access() {
        let mut i = GpioInput::Unused(7);
        assert!(i.is_high().unwrap_err().to_string().contains("line 7"));
        let mut o = GpioOutput::Unused(3);
        assert!(o.set_high().is_err() && o.set_low().is_err());
    }

    #[tokio::test]
    async fn a_missing_chip_faults_each_exchange_naming_it_and_is_retried_after_a_backoff() {
        let mut img = GpioImage::new("/nonexistent/gpiochip7", header_map()).unwrap();
        assert_eq!(img.input_pins().len(), 18);
        assert_eq!(img.output_pins().len(), 29);
        let f = img.read_inputs().await.unwrap_err();
        assert!(
            f.to_string()
                .contains("cannot open GPIO chip /nonexistent/gpiochip7"),
            "{f}"
        );
        // Within the backoff: the same cause, and when the next attempt comes.
        let f = img.read_inputs().await.unwrap_err();
        assert!(
            f.to_string().contains("/nonexistent/gpiochip7")
                && f.to_string().contains("next attempt"),
            "{f}"
        );
        assert!(!img.is_open());
        // After the backoff (100 ms) the chip is requested again: a fresh attempt, and
        // the next wait doubles.
        tokio::time::sleep(Duration::from_millis(120)).await;
        let f = img.read_inputs().await.unwrap_err().to_string();
        assert!(
            f.contains("cannot open GPIO chip") && !f.contains("next attempt"),
            "{f}"
        );
        let f = img.read_inputs().await.unwrap_err().to_string();
        let wait: u64 = f
            .rsplit("next attempt in ")
            .next()
            .and_then(|w| w.trim_end_matches(" ms").parse().ok())
            .unwrap_or(0);
        assert!((101..=200).contains(&wait), "{f}");
        // Pins of a closed chip err rather than read a level.
        let mut pin = img.input_pins().remove(2);
        assert!(matches!(pin.is_high(), Err(GpioError::Closed)));
        let mut out = img.output_pins().remove(20);
        assert!(out.set_high().is_err());
    }

    #[test]
    fn an_image_refuses_a_map_that_does_not_fit_one_chip() {
        let e = GpioImage::new("/dev/gpiochip0", IoMap::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("GPIO line 0"), "{e}");
    }
}
